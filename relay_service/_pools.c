/*
 * relay_service._pools: gives the pages of CPython's free pymalloc pools back to the system.
 *
 * CPython's small-object allocator (pymalloc) carves 1 MiB arenas into 16 KiB pools and
 * returns an arena to the system only once every block in it is free. After a burst of calls,
 * a few long-lived objects allocated during the calls keep most of the arenas the calls took,
 * and with them every free pool inside: resident memory that nothing uses (docs/performance.md,
 * fourth round). glibc's malloc_trim does not reach it.
 *
 * install() wraps the arena allocator (PyObject_SetArenaAllocator) to know where each arena
 * is; release() walks the pools of those arenas and, for each free one (no block in use),
 * marks its header as a pool never used (szidx = DUMMY_SIZE_IDX, as pymalloc marks a pool it
 * carves, so pymalloc initialises it afresh when it uses it again rather than reusing the free
 * list threaded through its blocks) and gives the pool's pages after the header's page back
 * with madvise(MADV_DONTNEED): they read as zeros when touched again. The header page stays,
 * so the arena's list of free pools is untouched.
 *
 * It relies on pymalloc's pool header (stable from CPython 3.8 to 3.13) and on the 64-bit
 * sizes (1 MiB arenas, 16 KiB pools). release() checks every pool in use first (size class,
 * offsets) and changes nothing if one does not look like a pymalloc pool; arenas of another
 * size are not walked. Arenas made before install() are not known, so not walked.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define ARENA_SIZE ((size_t)1 << 20)
#define POOL_SIZE ((uintptr_t)1 << 14)
#define POOL_OVERHEAD 48
#define SIZE_CLASSES 64
#define DUMMY_SIZE_IDX 0xffffu

/* pymalloc's struct pool_header (Objects/obmalloc.c). */
typedef struct pool_header {
    union {
        void *padding;
        unsigned int count; /* blocks in use */
    } ref;
    void *freeblock;
    struct pool_header *nextpool;
    struct pool_header *prevpool;
    unsigned int arenaindex;
    unsigned int szidx;
    unsigned int nextoffset;
    unsigned int maxnextoffset;
} pool_header;

static PyObjectArenaAllocator previous;
static int installed;
static void **arenas;
static size_t arena_count, arena_capacity;

static void *
arena_alloc(void *context, size_t size)
{
    void *address = previous.alloc(previous.ctx, size);
    if (address == NULL || size != ARENA_SIZE) {
        return address;
    }
    if (arena_count == arena_capacity) {
        size_t capacity = arena_capacity ? 2 * arena_capacity : 256;
        void **grown = realloc(arenas, capacity * sizeof(void *));
        if (grown == NULL) {
            return address; /* not noted: release() does not walk it */
        }
        arenas = grown;
        arena_capacity = capacity;
    }
    arenas[arena_count++] = address;
    return address;
}

static void
arena_free(void *context, void *address, size_t size)
{
    for (size_t i = 0; i < arena_count; i++) {
        if (arenas[i] == address) {
            arenas[i] = arenas[--arena_count];
            break;
        }
    }
    previous.free(previous.ctx, address, size);
}

static PyObjectArenaAllocator wrapper = {NULL, arena_alloc, arena_free};

/* install() -> bool: wrap the arena allocator (once); True if it is wrapped. */
static PyObject *
install(PyObject *module, PyObject *unused)
{
    if (!installed) {
        PyObject_GetArenaAllocator(&previous);
        if (previous.alloc == NULL || previous.free == NULL) {
            Py_RETURN_FALSE;
        }
        PyObject_SetArenaAllocator(&wrapper);
        installed = 1;
    }
    Py_RETURN_TRUE;
}

/* The pools of one arena: the first starts at the arena's first POOL_SIZE boundary. */
#define FOR_EACH_POOL(arena, pool)                                                          \
    for (uintptr_t at_ = ((uintptr_t)(arena) + POOL_SIZE - 1) & ~(POOL_SIZE - 1);          \
         at_ + POOL_SIZE <= (uintptr_t)(arena) + ARENA_SIZE && ((pool) = (pool_header *)at_); \
         at_ += POOL_SIZE)

static int
looks_in_use(const pool_header *pool)
{
    return pool->szidx < SIZE_CLASSES && pool->nextoffset <= POOL_SIZE
           && pool->maxnextoffset <= POOL_SIZE && pool->nextoffset >= POOL_OVERHEAD;
}

/* A free pool pymalloc used before (never-carved pools are all zeros, and not resident). */
static int
released_before(const pool_header *pool)
{
    return pool->szidx == DUMMY_SIZE_IDX
           || (pool->szidx == 0 && pool->nextoffset == 0 && pool->freeblock == NULL);
}

/* release() -> (pools, bytes): the free pools given back and their bytes; (0, 0) if not
 * installed. ValueError, with nothing changed, if a pool in use does not look like one. */
static PyObject *
release(PyObject *module, PyObject *unused)
{
    if (!installed) {
        return Py_BuildValue("(nn)", (Py_ssize_t)0, (Py_ssize_t)0);
    }
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || (uintptr_t)page >= POOL_SIZE || POOL_SIZE % (uintptr_t)page) {
        return Py_BuildValue("(nn)", (Py_ssize_t)0, (Py_ssize_t)0);
    }
    pool_header *pool;
    for (size_t i = 0; i < arena_count; i++) {
        FOR_EACH_POOL(arenas[i], pool)
        {
            if (pool->ref.count != 0 && !looks_in_use(pool)) {
                PyErr_SetString(PyExc_ValueError,
                                "a pool in use does not look like pymalloc's: nothing released");
                return NULL;
            }
        }
    }
    Py_ssize_t pools = 0;
    for (size_t i = 0; i < arena_count; i++) {
        FOR_EACH_POOL(arenas[i], pool)
        {
            if (pool->ref.count != 0 || released_before(pool)) {
                continue;
            }
            pool->szidx = DUMMY_SIZE_IDX;
            if (madvise((char *)pool + page, POOL_SIZE - (uintptr_t)page, MADV_DONTNEED) == 0) {
                pools++;
            }
        }
    }
    return Py_BuildValue("(nn)", pools, pools * (Py_ssize_t)(POOL_SIZE - (uintptr_t)page));
}

/* tracked() -> int: how many arenas release() walks. */
static PyObject *
tracked(PyObject *module, PyObject *unused)
{
    return PyLong_FromSize_t(arena_count);
}

static PyMethodDef pools_functions[] = {
    {"install", install, METH_NOARGS, "Wrap CPython's arena allocator to know its arenas."},
    {"release", release, METH_NOARGS,
     "Give the pages of the free pymalloc pools back to the system: (pools, bytes)."},
    {"tracked", tracked, METH_NOARGS, "How many arenas release() walks."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef pools_module = {
    PyModuleDef_HEAD_INIT, "relay_service._pools",
    "Gives the pages of CPython's free pymalloc pools back to the system.", -1, pools_functions,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__pools(void)
{
    return PyModule_Create(&pools_module);
}
