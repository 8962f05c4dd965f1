/*
 * webrtc_ext._native: the per-packet work of the raw RTP path, in C.
 *
 * Each object is the C form of a chain of Python calls the library runs for every forwarded
 * packet (see webrtc_ext/native.py, which builds them, and docs/performance.md):
 *
 * - SendPath: one raw sender's route to the wire. send(outbound, packet, seq, ts) writes the
 *   packet's header for the sender (OutboundRtpStream.write), protects it with the
 *   transport's libsrtp session, sends it with sendto(2) on the ICE socket of the selected
 *   pair, and counts it where the Python path counts it: the outgoing stream, the pair's
 *   counters, aiortc's transport counters and the statistics (RtpCounters.rtp_sent).
 *   send_media() does RtpMunger.munge's common case first.
 * - RecvPath: one transport's SRTP reception. receive(data, arrival, audio_level_id)
 *   unprotects, counts (aiortc's transport counters, RtpCounters.rtp_received) and parses
 *   the packet into a RawRtpPacket (RawRtpPacket.parse); deliver() takes a datagram from
 *   the ICE socket's callback through to the raw receiver's on_rtp callbacks.
 * - FanOut: an RtpFanOut's on_rtp callback, send_rtp's work for each destination.
 * - stream_add(): aiortc's StreamStatistics.add.
 *
 * None owns any state of the stream: every counter stays in the Python object the rest
 * of the library reads, and libsrtp's state stays in pylibsrtp's session, called through
 * the function pointers of pylibsrtp's own libsrtp. Each call first checks that what the
 * object was built for still holds (the transport connected with the same SRTP session,
 * the same selected pair and socket, the same interceptor stages); if not, it returns None
 * and the caller takes the Python path, which rebuilds the object.
 *
 * The Python path is the reference: tests/unit/test_native.py checks both give the same
 * bytes on the wire and the same counters.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* libsrtp 2's srtp_protect / srtp_unprotect: (srtp_t ctx, void *packet, int *length). */
typedef int (*srtp_function)(void *context, void *packet, int *length);

/* pylibsrtp's buffer size: longer packets are refused, as FastSrtpSession refuses them. */
#define SRTP_BUFFER 1500
#define SRTP_MAX_TRAILER_LEN 144
#define NTP_UNIX_OFFSET 2208988800.0

/* Interned attribute names, made once at import. */
static PyObject *s_state, *s_tx_srtp, *s_rx_srtp, *s_stages, *s_selected, *s_socket;
static PyObject *s_data, *s_payload_start, *s_payload_end, *s_marker, *s_audio_level;
static PyObject *s_packet_count, *s_octet_count, *s_last_timestamp;
static PyObject *s_packets_sent, *s_bytes_sent, *s_last_sent;
static PyObject *s_packets, *s_payload_bytes, *s_header_bytes, *s_highest_sequence;
static PyObject *s_retransmitted_packets, *s_retransmitted_payload_bytes;
static PyObject *s_base_sequence, *s_cycles, *s_last_received, *s_malformed;
static PyObject *s_dict, *s_send_rtp_now;
static PyObject *s_sent, *s_received, *s_rtp_sent, *s_rtp_received, *s_transport, *s_sendto;
static PyObject *s_payload_type, *s_sequence_number, *s_timestamp, *s_ssrc, *s_arrival_time;

/* Attribute access for the per-packet work. A plain __slots__ member (a T_OBJECT_EX member
 * descriptor on a type with the generic getattr and setattr) is read and written at its
 * offset, found once per (type, name) and kept while the type's version tag holds (any
 * change to the type or its bases gives it a new tag); everything else, and an unset slot,
 * goes through PyObject_GetAttr / PyObject_SetAttr, so the result is always theirs. */
#define SLOT_CACHE_SIZE 512
typedef struct {
    PyTypeObject *type; /* compared only against a live object's type: never dereferenced */
    PyObject *name;     /* a strong reference, so its address is not reused while cached */
    unsigned int version;
    Py_ssize_t offset; /* 0: not a plain slot */
} SlotEntry;
static SlotEntry slot_cache[SLOT_CACHE_SIZE];

static int
version_valid(PyTypeObject *type)
{
#ifdef Py_TPFLAGS_VALID_VERSION_TAG
    if (!(type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
        return 0;
    }
#endif
    return type->tp_version_tag != 0;
}

static Py_ssize_t
slot_offset(PyTypeObject *type, PyObject *name)
{
    uintptr_t key = ((uintptr_t)type >> 4) ^ (((uintptr_t)name >> 4) * 0x9E3779B1u);
    SlotEntry *entry = &slot_cache[(key ^ (key >> 11)) & (SLOT_CACHE_SIZE - 1)];
    if (entry->type == type && entry->name == name && entry->version == type->tp_version_tag
        && version_valid(type)) {
        return entry->offset;
    }
    Py_ssize_t offset = 0;
    if (type->tp_getattro == PyObject_GenericGetAttr
        && type->tp_setattro == PyObject_GenericSetAttr && PyUnicode_CheckExact(name)) {
        PyObject *descriptor = _PyType_Lookup(type, name); /* borrowed; sets the version tag */
        if (descriptor != NULL && Py_IS_TYPE(descriptor, &PyMemberDescr_Type)) {
            PyMemberDef *member = ((PyMemberDescrObject *)descriptor)->d_member;
            if (member->type == T_OBJECT_EX && !(member->flags & READONLY)) {
                offset = member->offset;
            }
        }
    }
    if (version_valid(type)) {
        Py_INCREF(name);
        Py_XSETREF(entry->name, name);
        entry->type = type;
        entry->version = type->tp_version_tag;
        entry->offset = offset;
    }
    return offset;
}

/* obj.name, a new reference (NULL with an exception on error). */
static PyObject *
fast_get(PyObject *obj, PyObject *name)
{
    Py_ssize_t offset = slot_offset(Py_TYPE(obj), name);
    if (offset > 0) {
        PyObject *value = *(PyObject **)((char *)obj + offset);
        if (value != NULL) {
            Py_INCREF(value);
            return value;
        }
    }
    return PyObject_GetAttr(obj, name);
}

/* obj.name = value; -1 with an exception on error. */
static int
fast_set(PyObject *obj, PyObject *name, PyObject *value)
{
    Py_ssize_t offset = value == NULL ? 0 : slot_offset(Py_TYPE(obj), name);
    if (offset > 0) {
        PyObject **slot = (PyObject **)((char *)obj + offset);
        Py_INCREF(value);
        Py_XSETREF(*slot, value);
        return 0;
    }
    return PyObject_SetAttr(obj, name, value);
}

static double
wall_clock(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/* obj.name += delta, for a Python int attribute. */
static int
add_to(PyObject *obj, PyObject *name, long long delta)
{
    PyObject *value = fast_get(obj, name);
    if (value == NULL) {
        return -1;
    }
    PyObject *increment = PyLong_FromLongLong(delta);
    if (increment == NULL) {
        Py_DECREF(value);
        return -1;
    }
    PyObject *sum = PyNumber_Add(value, increment);
    Py_DECREF(value);
    Py_DECREF(increment);
    if (sum == NULL) {
        return -1;
    }
    int result = fast_set(obj, name, sum);
    Py_DECREF(sum);
    return result;
}

static int
set_long(PyObject *obj, PyObject *name, long long value)
{
    PyObject *number = PyLong_FromLongLong(value);
    if (number == NULL) {
        return -1;
    }
    int result = fast_set(obj, name, number);
    Py_DECREF(number);
    return result;
}

static int
set_double(PyObject *obj, PyObject *name, double value)
{
    PyObject *number = PyFloat_FromDouble(value);
    if (number == NULL) {
        return -1;
    }
    int result = fast_set(obj, name, number);
    Py_DECREF(number);
    return result;
}

/* Whether obj.name is expected (a borrowed identity check); -1 on error. */
static int
attr_is(PyObject *obj, PyObject *name, PyObject *expected)
{
    PyObject *value = fast_get(obj, name);
    if (value == NULL) {
        return -1;
    }
    int same = value == expected;
    Py_DECREF(value);
    return same;
}

/* An int attribute as long long; -1 with an exception set on error (check PyErr_Occurred). */
static long long
get_long(PyObject *obj, PyObject *name)
{
    PyObject *value = fast_get(obj, name);
    if (value == NULL) {
        return -1;
    }
    long long result = PyLong_AsLongLong(value);
    Py_DECREF(value);
    return result;
}

/* The time from a statistics clock (a callable returning float seconds). */
static int
read_clock(PyObject *clock, PyObject **now)
{
    *now = PyObject_CallNoArgs(clock);
    return *now == NULL ? -1 : 0;
}

/* Raise pylibsrtp.Error with libsrtp's reason for status, as FastSrtpSession does. */
static void
srtp_error(PyObject *error_type, PyObject *reasons, int status)
{
    if (status >= 0 && status < PyTuple_GET_SIZE(reasons)) {
        PyErr_SetObject(error_type, PyTuple_GET_ITEM(reasons, status));
    } else {
        PyErr_Format(error_type, "error %d", status);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* SendPath                                                                                 */

typedef struct {
    PyObject_HEAD
    /* what the path was built for, checked on every packet */
    PyObject *transport;      /* the RTCDtlsTransport */
    PyObject *connected;      /* aiortc's State.CONNECTED */
    PyObject *session;        /* transport._tx_srtp when built */
    PyObject *chain;          /* transport.interceptors */
    PyObject *stages;         /* chain._stages when built: () or (RtpStatsInterceptor,) */
    PyObject *engine;         /* the ICE check list */
    PyObject *pair;           /* engine.selected[1] when built */
    PyObject *protocol;       /* the pair's IceProtocol */
    PyObject *sock;           /* protocol._socket when built */
    PyObject *address;        /* the pair's remote address tuple */
    PyObject *outbound;       /* the sender's OutboundRtpStream */
    /* where it counts */
    PyObject *peer_counters;  /* protocol.peer_counters(address) */
    PyObject *tx_bytes_name;  /* aiortc's private transport counters */
    PyObject *tx_packets_name;
    PyObject *stats;          /* RtpCounters, or None */
    PyObject *clock;          /* the statistics' clock */
    PyObject *error_type;     /* pylibsrtp.Error */
    PyObject *reasons;        /* pylibsrtp.ERRORS, a tuple */
    /* how it writes and sends */
    srtp_function protect;
    void *context;
    int fd;
    struct sockaddr_storage sockaddr;
    socklen_t sockaddr_length;
    uint32_t ssrc;
    PyObject *ssrc_key;
    int payload_type;
    int abs_send_time_id;
    int audio_level_id;
    unsigned char mid_element[17];
    int mid_element_length;
} SendPath;

static int
SendPath_traverse(SendPath *self, visitproc visit, void *arg)
{
    Py_VISIT(self->transport);
    Py_VISIT(self->connected);
    Py_VISIT(self->session);
    Py_VISIT(self->chain);
    Py_VISIT(self->stages);
    Py_VISIT(self->engine);
    Py_VISIT(self->pair);
    Py_VISIT(self->protocol);
    Py_VISIT(self->sock);
    Py_VISIT(self->address);
    Py_VISIT(self->outbound);
    Py_VISIT(self->peer_counters);
    Py_VISIT(self->stats);
    Py_VISIT(self->clock);
    Py_VISIT(self->error_type);
    Py_VISIT(self->reasons);
    return 0;
}

static int
SendPath_clear(SendPath *self)
{
    Py_CLEAR(self->transport);
    Py_CLEAR(self->connected);
    Py_CLEAR(self->session);
    Py_CLEAR(self->chain);
    Py_CLEAR(self->stages);
    Py_CLEAR(self->engine);
    Py_CLEAR(self->pair);
    Py_CLEAR(self->protocol);
    Py_CLEAR(self->sock);
    Py_CLEAR(self->address);
    Py_CLEAR(self->outbound);
    Py_CLEAR(self->peer_counters);
    Py_CLEAR(self->tx_bytes_name);
    Py_CLEAR(self->tx_packets_name);
    Py_CLEAR(self->stats);
    Py_CLEAR(self->clock);
    Py_CLEAR(self->error_type);
    Py_CLEAR(self->reasons);
    Py_CLEAR(self->ssrc_key);
    return 0;
}

static void
SendPath_dealloc(SendPath *self)
{
    PyObject_GC_UnTrack(self);
    SendPath_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The IPv4 or IPv6 socket address of (host, port, ...); -1 (ValueError) if it is neither. */
static int
parse_address(PyObject *address, int family, struct sockaddr_storage *out, socklen_t *length)
{
    const char *host;
    int port;
    if (!PyTuple_Check(address) || PyTuple_GET_SIZE(address) < 2) {
        PyErr_SetString(PyExc_ValueError, "address must be a (host, port) tuple");
        return -1;
    }
    host = PyUnicode_AsUTF8(PyTuple_GET_ITEM(address, 0));
    if (host == NULL) {
        return -1;
    }
    port = (int)PyLong_AsLong(PyTuple_GET_ITEM(address, 1));
    if (port == -1 && PyErr_Occurred()) {
        return -1;
    }
    memset(out, 0, sizeof(*out));
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)out;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
            *length = sizeof(*in);
            return 0;
        }
    } else if (family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        if (PyTuple_GET_SIZE(address) >= 4) {
            in6->sin6_scope_id = (uint32_t)PyLong_AsUnsignedLong(PyTuple_GET_ITEM(address, 3));
            if (PyErr_Occurred()) {
                return -1;
            }
        }
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
            *length = sizeof(*in6);
            return 0;
        }
    }
    PyErr_Format(PyExc_ValueError, "address %R is not a numeric address of the socket's family",
                 address);
    return -1;
}

static int
SendPath_init(SendPath *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "transport", "connected", "session", "chain", "stages", "engine", "pair",
        "protocol", "sock", "family", "address", "outbound", "peer_counters",
        "tx_bytes_name", "tx_packets_name", "stats", "clock", "error_type", "reasons",
        "protect", "context", "ssrc", "payload_type", "mid_element", "abs_send_time_id",
        "audio_level_id", NULL};
    PyObject *transport, *connected, *session, *chain, *stages, *engine, *pair, *protocol;
    PyObject *sock, *address, *outbound, *peer_counters, *tx_bytes_name, *tx_packets_name;
    PyObject *stats, *clock, *error_type, *reasons;
    unsigned long long protect, context;
    unsigned long ssrc;
    int family, payload_type, abs_send_time_id, audio_level_id;
    Py_buffer mid;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "OOOOO!OOOOiOOOUUOOOO!KKkiy*ii", keywords, &transport, &connected,
            &session, &chain, &PyTuple_Type, &stages, &engine, &pair, &protocol, &sock,
            &family, &address, &outbound, &peer_counters, &tx_bytes_name, &tx_packets_name,
            &stats, &clock, &error_type, &PyTuple_Type, &reasons, &protect, &context, &ssrc,
            &payload_type, &mid, &abs_send_time_id, &audio_level_id)) {
        return -1;
    }
    if (mid.len > 17 || protect == 0 || context == 0 || payload_type < 0 || payload_type > 127
        || abs_send_time_id < 0 || abs_send_time_id > 14 || audio_level_id < 0
        || audio_level_id > 14) {
        PyBuffer_Release(&mid);
        PyErr_SetString(PyExc_ValueError, "invalid send path parameters");
        return -1;
    }
    memcpy(self->mid_element, mid.buf, (size_t)mid.len);
    self->mid_element_length = (int)mid.len;
    PyBuffer_Release(&mid);
    int fd = PyObject_AsFileDescriptor(sock);
    if (fd < 0) {
        return -1;
    }
    if (parse_address(address, family, &self->sockaddr, &self->sockaddr_length) < 0) {
        return -1;
    }
    SendPath_clear(self);
    self->ssrc_key = PyLong_FromUnsignedLong(ssrc);
    if (self->ssrc_key == NULL) {
        return -1;
    }
#define KEEP(field) Py_INCREF(field); self->field = field
    KEEP(transport);
    KEEP(connected);
    KEEP(session);
    KEEP(chain);
    KEEP(stages);
    KEEP(engine);
    KEEP(pair);
    KEEP(protocol);
    KEEP(sock);
    KEEP(address);
    KEEP(outbound);
    KEEP(peer_counters);
    KEEP(tx_bytes_name);
    KEEP(tx_packets_name);
    KEEP(stats);
    KEEP(clock);
    KEEP(error_type);
    KEEP(reasons);
#undef KEEP
    self->fd = fd;
    self->protect = (srtp_function)(uintptr_t)protect;
    self->context = (void *)(uintptr_t)context;
    self->ssrc = (uint32_t)ssrc;
    self->payload_type = payload_type;
    self->abs_send_time_id = abs_send_time_id;
    self->audio_level_id = audio_level_id;
    return 0;
}

/* 1 if everything the path was built for still holds, 0 if not, -1 on error. */
static int
SendPath_valid(SendPath *self, PyObject *outbound)
{
    int same;
    if (outbound != self->outbound) {
        return 0;
    }
    if ((same = attr_is(self->transport, s_state, self->connected)) != 1) {
        return same;
    }
    if ((same = attr_is(self->transport, s_tx_srtp, self->session)) != 1) {
        return same;
    }
    if ((same = attr_is(self->chain, s_stages, self->stages)) != 1) {
        return same;
    }
    if ((same = attr_is(self->protocol, s_socket, self->sock)) != 1) {
        return same;
    }
    /* send_rtp_now replaced on the transport (a test's capture or loss): it sees everything. */
    PyObject *instance = fast_get(self->transport, s_dict);
    if (instance == NULL) {
        return -1;
    }
    same = PyDict_Check(instance) && PyDict_GetItemWithError(instance, s_send_rtp_now) != NULL;
    Py_DECREF(instance);
    if (same || PyErr_Occurred()) {
        return PyErr_Occurred() ? -1 : 0;
    }
    PyObject *selected = fast_get(self->engine, s_selected);
    if (selected == NULL) {
        return -1;
    }
    if (!PyDict_Check(selected)) {
        Py_DECREF(selected);
        return 0;
    }
    PyObject *one = PyLong_FromLong(1);
    PyObject *pair = one == NULL ? NULL : PyDict_GetItemWithError(selected, one);
    Py_XDECREF(one);
    Py_DECREF(selected);
    if (pair == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    return pair == self->pair;
}

/* The statistics of one sent packet, as RtpCounters.rtp_sent counts it. */
static int
count_sent(SendPath *self, const unsigned char *plain, Py_ssize_t length, Py_ssize_t header,
           uint16_t sequence)
{
    if (self->stats == Py_None) {
        return 0;
    }
    PyObject *now;
    if (read_clock(self->clock, &now) < 0) {
        return -1;
    }
    PyObject *streams = fast_get(self->stats, s_sent);
    if (streams == NULL) {
        Py_DECREF(now);
        return -1;
    }
    PyObject *stream = PyDict_Check(streams) ? PyDict_GetItemWithError(streams, self->ssrc_key)
                                             : NULL;
    Py_DECREF(streams);
    if (stream == NULL) {
        /* The stream's first packet (or not a dict): RtpCounters counts it itself. */
        if (PyErr_Occurred()) {
            Py_DECREF(now);
            return -1;
        }
        PyObject *data = PyBytes_FromStringAndSize((const char *)plain, length);
        if (data == NULL) {
            Py_DECREF(now);
            return -1;
        }
        PyObject *result = PyObject_CallMethodObjArgs(self->stats, s_rtp_sent, data, now, NULL);
        Py_DECREF(data);
        Py_DECREF(now);
        Py_XDECREF(result);
        return result == NULL ? -1 : 0;
    }
    Py_INCREF(stream);
    long long payload = length - header;
    int failed = add_to(stream, s_packets, 1) < 0 || add_to(stream, s_payload_bytes, payload) < 0
                 || add_to(stream, s_header_bytes, header) < 0
                 || fast_set(stream, s_last_sent, now) < 0;
    Py_DECREF(now);
    if (!failed) {
        PyObject *highest = fast_get(stream, s_highest_sequence);
        if (highest == NULL) {
            failed = 1;
        } else {
            long long previous = highest == Py_None ? -1 : PyLong_AsLongLong(highest);
            Py_DECREF(highest);
            if (previous == -1 && PyErr_Occurred()) {
                failed = 1;
            } else {
                unsigned int step = ((unsigned int)sequence - (unsigned int)previous) & 0xFFFF;
                if (previous < 0 || (0 < step && step < 0x8000)) {
                    failed = set_long(stream, s_highest_sequence, sequence) < 0;
                } else {
                    failed = add_to(stream, s_retransmitted_packets, 1) < 0
                             || add_to(stream, s_retransmitted_payload_bytes, payload) < 0;
                }
            }
        }
    }
    Py_DECREF(stream);
    return failed ? -1 : 0;
}

static unsigned int
get16(const unsigned char *at)
{
    return ((unsigned int)at[0] << 8) | at[1];
}

static uint32_t
get32(const unsigned char *at)
{
    return ((uint32_t)at[0] << 24) | ((uint32_t)at[1] << 16) | ((uint32_t)at[2] << 8) | at[3];
}

static void
put16(unsigned char *at, unsigned int value)
{
    at[0] = (unsigned char)(value >> 8);
    at[1] = (unsigned char)value;
}

static void
put32(unsigned char *at, uint32_t value)
{
    at[0] = (unsigned char)(value >> 24);
    at[1] = (unsigned char)(value >> 16);
    at[2] = (unsigned char)(value >> 8);
    at[3] = (unsigned char)value;
}

/* Write, protect, send and count one packet with its outgoing sequence number and timestamp
 * (the path already checked valid): the NTP time it was written with, NULL on error. */
static PyObject *
send_packet(SendPath *self, PyObject *outbound, PyObject *packet, long sequence,
            unsigned long long timestamp)
{
    /* The packet's payload and the header fields this sender keeps. */
    PyObject *data = fast_get(packet, s_data);
    if (data == NULL) {
        return NULL;
    }
    if (!PyBytes_Check(data)) {
        Py_DECREF(data);
        PyErr_SetString(PyExc_TypeError, "packet.data must be bytes");
        return NULL;
    }
    long long start = get_long(packet, s_payload_start);
    long long end = start == -1 && PyErr_Occurred() ? -1 : get_long(packet, s_payload_end);
    PyObject *marker = end == -1 && PyErr_Occurred() ? NULL : fast_get(packet, s_marker);
    PyObject *level = marker == NULL ? NULL : fast_get(packet, s_audio_level);
    int marked = level == NULL ? -1 : PyObject_IsTrue(marker);
    Py_XDECREF(marker);
    if (marked < 0) {
        Py_XDECREF(level);
        Py_DECREF(data);
        return NULL;
    }
    if (start < 0 || end < start || end > PyBytes_GET_SIZE(data)) {
        Py_DECREF(level);
        Py_DECREF(data);
        PyErr_SetString(PyExc_ValueError, "packet payload bounds are outside its data");
        return NULL;
    }

    /* OutboundRtpStream.write: fixed header, one-byte extensions (RFC 8285), payload. */
    unsigned char buffer[SRTP_BUFFER + SRTP_MAX_TRAILER_LEN];
    unsigned char elements[32];
    int count = 0;
    double wall = wall_clock();
    unsigned long long ntp = (unsigned long long)((wall + NTP_UNIX_OFFSET) * 4294967296.0);
    memcpy(elements, self->mid_element, (size_t)self->mid_element_length);
    count = self->mid_element_length;
    if (self->abs_send_time_id && ntp) {
        uint32_t value = (uint32_t)(ntp >> 14) & 0xFFFFFF;
        elements[count++] = (unsigned char)((self->abs_send_time_id << 4) | 2);
        elements[count++] = (unsigned char)(value >> 16);
        elements[count++] = (unsigned char)(value >> 8);
        elements[count++] = (unsigned char)value;
    }
    if (self->audio_level_id && level != Py_None) {
        long byte = PyLong_AsLong(level);
        if (byte == -1 && PyErr_Occurred()) {
            Py_DECREF(level);
            Py_DECREF(data);
            return NULL;
        }
        elements[count++] = (unsigned char)(self->audio_level_id << 4);
        elements[count++] = (unsigned char)byte;
    }
    Py_DECREF(level);
    Py_ssize_t header = 12;
    buffer[0] = 0x80;
    if (count) {
        int pad = (4 - count % 4) % 4;
        buffer[0] = 0x90;
        put16(buffer + 12, 0xBEDE);
        put16(buffer + 14, (unsigned int)((count + pad) / 4));
        memcpy(buffer + 16, elements, (size_t)count);
        memset(buffer + 16 + count, 0, (size_t)pad);
        header = 16 + count + pad;
    }
    buffer[1] = (unsigned char)((marked ? 0x80 : 0) | self->payload_type);
    put16(buffer + 2, (unsigned int)sequence & 0xFFFF);
    put32(buffer + 4, (uint32_t)timestamp);
    put32(buffer + 8, self->ssrc);
    Py_ssize_t payload = (Py_ssize_t)(end - start);
    Py_ssize_t length = header + payload;
    if (length > SRTP_BUFFER - SRTP_MAX_TRAILER_LEN) {
        Py_DECREF(data);
        PyErr_SetString(PyExc_ValueError, "packet is too long");
        return NULL;
    }
    memcpy(buffer + header, PyBytes_AS_STRING(data) + start, (size_t)payload);
    Py_DECREF(data);
    if (add_to(outbound, s_packet_count, 1) < 0 || add_to(outbound, s_octet_count, payload) < 0
        || set_long(outbound, s_last_timestamp, (long long)timestamp) < 0) {
        return NULL;
    }
    /* The plaintext, for the statistics (protection happens in place). */
    unsigned char plain[SRTP_BUFFER];
    memcpy(plain, buffer, (size_t)length);

    /* SRTP (RFC 3711 §3.3), with the transport's own session. */
    int protected_length = (int)length;
    int status = self->protect(self->context, buffer, &protected_length);
    if (status) {
        srtp_error(self->error_type, self->reasons, status);
        return NULL;
    }

    /* IceProtocol.send_datagram: count, then sendto; asyncio's transport if that fails. */
    if (add_to(self->peer_counters, s_packets_sent, 1) < 0
        || add_to(self->peer_counters, s_bytes_sent, protected_length) < 0
        || set_double(self->peer_counters, s_last_sent, wall) < 0) {
        return NULL;
    }
    /* Non-blocking: the GIL is kept (releasing it costs more than the call). */
    ssize_t sent = sendto(self->fd, buffer, (size_t)protected_length, 0,
                          (struct sockaddr *)&self->sockaddr, self->sockaddr_length);
    if (sent < 0) {
        PyObject *datagram = PyBytes_FromStringAndSize((const char *)buffer, protected_length);
        PyObject *asyncio_transport =
            datagram == NULL ? NULL : fast_get(self->protocol, s_transport);
        PyObject *result = asyncio_transport == NULL
                               ? NULL
                               : PyObject_CallMethodObjArgs(asyncio_transport, s_sendto, datagram,
                                                            self->address, NULL);
        Py_XDECREF(datagram);
        Py_XDECREF(asyncio_transport);
        if (result == NULL) {
            return NULL;
        }
        Py_DECREF(result);
    }

    /* aiortc's transport counters, then the statistics (RtpFastPathMixin.send_rtp_now). */
    if (add_to(self->transport, self->tx_bytes_name, protected_length) < 0
        || add_to(self->transport, self->tx_packets_name, 1) < 0
        || count_sent(self, plain, length, header, (uint16_t)sequence) < 0) {
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(ntp);
}

/* send(outbound, packet, sequence_number, timestamp) -> the NTP time it was sent at, or None */
static PyObject *
SendPath_send(SendPath *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "send() takes 4 arguments");
        return NULL;
    }
    PyObject *outbound = args[0], *packet = args[1];
    long sequence = PyLong_AsLong(args[2]);
    unsigned long long timestamp = PyLong_AsUnsignedLongLong(args[3]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    int valid = SendPath_valid(self, outbound);
    if (valid <= 0) {
        if (valid < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    return send_packet(self, outbound, packet, sequence, timestamp);
}

/* The munger members RtpMunger._in_segment reads (their names: munger_names). */
enum {
    M_HIGH_IN_SEQ16,
    M_HIGH_IN_SEQ,
    M_FIRST_IN_SEQ,
    M_HIGH_IN_TS32,
    M_HIGH_IN_TS,
    M_TS_OFFSET,
    M_SEGMENT_FLOOR_TS,
    M_CLOCK_RATE,
    M_SEQ_OFFSET,
    M_HIGH_OUT_SEQ,
    M_HIGH_OUT_TS,
    M_COUNT
};
static PyObject *munger_names[M_COUNT];
static PyObject *s_segment_started, *s_source, *s_segment_ssrc, *s_frame_ticks;
static PyObject *s_high_out_time, *s_dropped;

/* RtpMunger.munge's common case (a packet of the current segment), as _in_segment computes
 * it: 1 with *sequence and *timestamp set, 0 if the munger drops the packet (counted), 2 if
 * the packet is not of the current segment (nothing changed: the caller takes munge()), -1
 * on error (or a value beyond 64 bits: 2, Python's ints have no limit). */
static int
munge_in_segment(PyObject *munger, PyObject *source, PyObject *packet_ssrc, long long sequence,
                 long long timestamp, PyObject *now, long *out_sequence,
                 unsigned long long *out_timestamp)
{
    PyObject *value = fast_get(munger, s_segment_started);
    if (value == NULL) {
        return -1;
    }
    int started = value == Py_True;
    Py_DECREF(value);
    if (!started) {
        return 2;
    }
    int same;
    if ((value = fast_get(munger, s_source)) == NULL) {
        return -1;
    }
    same = PyObject_RichCompareBool(source, value, Py_EQ);
    Py_DECREF(value);
    if (same != 1) {
        return same < 0 ? -1 : 2;
    }
    if ((value = fast_get(munger, s_segment_ssrc)) == NULL) {
        return -1;
    }
    same = PyObject_RichCompareBool(packet_ssrc, value, Py_EQ);
    Py_DECREF(value);
    if (same != 1) {
        return same < 0 ? -1 : 2;
    }
    long long m[M_COUNT];
    for (int i = 0; i < M_COUNT; i++) {
        int overflow = 0;
        if ((value = fast_get(munger, munger_names[i])) == NULL) {
            return -1;
        }
        m[i] = PyLong_Check(value) ? PyLong_AsLongLongAndOverflow(value, &overflow) : 0;
        int bad = !PyLong_Check(value) || overflow || (m[i] == -1 && PyErr_Occurred());
        Py_DECREF(value);
        if (bad) {
            PyErr_Clear();
            return 2;
        }
    }
    long long delta = (sequence - m[M_HIGH_IN_SEQ16]) & 0xFFFF;
    long long in_seq = m[M_HIGH_IN_SEQ] + (delta >= 0x8000 ? delta - 0x10000 : delta);
    delta = (timestamp - m[M_HIGH_IN_TS32]) & 0xFFFFFFFFLL;
    long long in_ts = m[M_HIGH_IN_TS] + (delta >= 0x80000000LL ? delta - 0x100000000LL : delta);
    long long out_ts = in_ts + m[M_TS_OFFSET];
    if (in_seq < m[M_FIRST_IN_SEQ] || out_ts <= m[M_SEGMENT_FLOOR_TS]) {
        return add_to(munger, s_dropped, 1) < 0 ? -1 : 0;
    }
    if (in_seq > m[M_HIGH_IN_SEQ]) {
        long long step = in_ts - m[M_HIGH_IN_TS];
        if (in_seq == m[M_HIGH_IN_SEQ] + 1 && 0 < step && step < m[M_CLOCK_RATE]
            && set_long(munger, s_frame_ticks, step) < 0) {
            return -1;
        }
        if (set_long(munger, munger_names[M_HIGH_IN_SEQ], in_seq) < 0
            || set_long(munger, munger_names[M_HIGH_IN_SEQ16], sequence & 0xFFFF) < 0) {
            return -1;
        }
    }
    if (in_ts > m[M_HIGH_IN_TS]
        && (set_long(munger, munger_names[M_HIGH_IN_TS], in_ts) < 0
            || set_long(munger, munger_names[M_HIGH_IN_TS32], timestamp & 0xFFFFFFFFLL) < 0)) {
        return -1;
    }
    long long out_seq = in_seq + m[M_SEQ_OFFSET];
    if (out_seq > m[M_HIGH_OUT_SEQ] && set_long(munger, munger_names[M_HIGH_OUT_SEQ], out_seq) < 0) {
        return -1;
    }
    if (out_ts > m[M_HIGH_OUT_TS]
        && (set_long(munger, munger_names[M_HIGH_OUT_TS], out_ts) < 0
            || fast_set(munger, s_high_out_time, now) < 0)) {
        return -1;
    }
    *out_sequence = (long)(out_seq & 0xFFFF);
    *out_timestamp = (unsigned long long)(out_ts & 0xFFFFFFFFLL);
    return 1;
}

/* send_media(outbound, munger, packet, source, now): RtpMunger.munge's common case, then
 * send(): the NTP time it was sent at, False if the munger dropped the packet, None if the
 * path no longer holds or the packet is not of the munger's current segment (nothing was
 * changed: the caller takes the Python path). */
static PyObject *
SendPath_send_media(SendPath *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "send_media() takes 5 arguments");
        return NULL;
    }
    PyObject *outbound = args[0], *munger = args[1], *packet = args[2];
    int valid = SendPath_valid(self, outbound);
    if (valid <= 0) {
        if (valid < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyObject *ssrc = fast_get(packet, s_ssrc);
    if (ssrc == NULL) {
        return NULL;
    }
    long long sequence = get_long(packet, s_sequence_number);
    long long timestamp = sequence == -1 && PyErr_Occurred() ? -1 : get_long(packet, s_timestamp);
    if (timestamp == -1 && PyErr_Occurred()) {
        Py_DECREF(ssrc);
        return NULL;
    }
    long out_sequence = 0;
    unsigned long long out_timestamp = 0;
    int munged = munge_in_segment(munger, args[3], ssrc, sequence, timestamp, args[4],
                                  &out_sequence, &out_timestamp);
    Py_DECREF(ssrc);
    switch (munged) {
    case -1:
        return NULL;
    case 0:
        Py_RETURN_FALSE;
    case 2:
        Py_RETURN_NONE;
    }
    return send_packet(self, outbound, packet, out_sequence, out_timestamp);
}

/* ---------------------------------------------------------------------------------------- */
/* FanOut                                                                                   */

/* ---- OpusRepacketizer.push (webrtc_ext.opus), on the repacketizer's own attributes -------- */

static PyObject *s_frames, *s_held, *s_toc, *s_bytes, *s_sequence, *s_packets_in, *s_packets_out;
static PyObject *s_receiver, *s_mime_type, *s_negotiated_codecs;

#define OPUS_MAX_PACKET_SAMPLES 5760 /* RFC 6716 §3.2.5: 120 ms */
#define OPUS_MAX_FRAME_BYTES 1275    /* RFC 6716 §3.2.1 */
#define OPUS_MAX_JOINED_BYTES 1100   /* webrtc_ext.opus.MAX_JOINED_BYTES */
#define OPUS_MAX_HELD 48             /* frames in one code 3 packet */

/* The header fields and payload bounds of one packet, read from its attributes. */
typedef struct {
    PyObject *data; /* borrowed from the packet's attribute while the packet is held */
    long long start, end, payload_type, sequence, timestamp, ssrc;
} PacketFields;

/* 0 with `f` filled, 1 if the packet is not a plain one (not bytes, a field out of its
 * range): the Python method takes it; -1 on error. Nothing is changed either way. */
static int
packet_fields(PyObject *packet, PacketFields *f)
{
    PyObject *names[6] = {s_payload_start, s_payload_end, s_payload_type,
                          s_sequence_number, s_timestamp, s_ssrc};
    long long *values[6] = {&f->start, &f->end, &f->payload_type,
                            &f->sequence, &f->timestamp, &f->ssrc};
    PyObject *data = fast_get(packet, s_data);
    if (data == NULL) {
        return -1;
    }
    int plain = PyBytes_CheckExact(data);
    f->data = data;
    Py_DECREF(data); /* the packet's __slots__ keeps it */
    for (int i = 0; plain && i < 6; i++) {
        PyObject *value = fast_get(packet, names[i]);
        if (value == NULL) {
            return -1;
        }
        plain = PyLong_CheckExact(value);
        *values[i] = plain ? PyLong_AsLongLong(value) : -1;
        Py_DECREF(value);
        if (*values[i] == -1 && PyErr_Occurred()) {
            PyErr_Clear(); /* beyond 64 bits: not a plain packet */
            plain = 0;
        }
    }
    if (!plain) {
        return 1;
    }
    return f->start >= 0 && f->start <= f->end && f->end <= PyBytes_GET_SIZE(f->data)
                   && f->payload_type >= 0 && f->payload_type <= 127 && f->sequence >= 0
                   && f->sequence <= 0xFFFF && f->timestamp >= 0 && f->timestamp <= 0xFFFFFFFFLL
                   && f->ssrc >= 0 && f->ssrc <= 0xFFFFFFFFLL
               ? 0
               : 1;
}

/* webrtc_ext.opus.frame_samples */
static long
frame_samples(long toc)
{
    static const long silk[4] = {480, 960, 1920, 2880}, celt[4] = {120, 240, 480, 960};
    long config = toc >> 3;
    if (config < 12) {
        return silk[config & 3];
    }
    if (config < 16) {
        return (config & 1) ? 960 : 480;
    }
    return celt[config & 3];
}

/* A RawRtpPacket of `type` with `values` (new references, stolen: data, payload_type, marker,
 * sequence_number, timestamp, ssrc, payload_start, payload_end, arrival_time, audio_level). */
static PyObject *
make_packet(PyObject *type, PyObject *values[10])
{
    static PyObject **names[10] = {&s_data, &s_payload_type, &s_marker, &s_sequence_number,
                                   &s_timestamp, &s_ssrc, &s_payload_start, &s_payload_end,
                                   &s_arrival_time, &s_audio_level};
    PyObject *packet = ((PyTypeObject *)type)->tp_alloc((PyTypeObject *)type, 0);
    int failed = packet == NULL;
    for (int i = 0; i < 10; i++) {
        if (values[i] == NULL || (!failed && fast_set(packet, *names[i], values[i]) < 0)) {
            failed = 1;
        }
        Py_XDECREF(values[i]);
    }
    if (failed) {
        Py_XDECREF(packet);
        return NULL;
    }
    return packet;
}

/* OpusRepacketizer._next_sequence */
static PyObject *
next_sequence(PyObject *packer)
{
    PyObject *sequence = fast_get(packer, s_sequence);
    if (sequence == NULL) {
        return NULL;
    }
    long long value = PyLong_AsLongLong(sequence);
    if ((value == -1 && PyErr_Occurred()) || set_long(packer, s_sequence, (value + 1) & 0xFFFF) < 0) {
        Py_DECREF(sequence);
        return NULL;
    }
    return sequence;
}

/* OpusRepacketizer._renumbered: a copy of `packet` with the repacketizer's next number. */
static PyObject *
renumbered(PyObject *packer, PyObject *packet, PyObject *type)
{
    PyObject *sequence = next_sequence(packer);
    if (sequence == NULL) {
        return NULL;
    }
    PyObject *values[10] = {
        fast_get(packet, s_data), fast_get(packet, s_payload_type),
        fast_get(packet, s_marker), sequence,
        fast_get(packet, s_timestamp), fast_get(packet, s_ssrc),
        fast_get(packet, s_payload_start), fast_get(packet, s_payload_end),
        fast_get(packet, s_arrival_time), fast_get(packet, s_audio_level),
    };
    PyObject *copy = make_packet(type, values);
    if (copy == NULL || add_to(packer, s_packets_out, 1) < 0) {
        Py_XDECREF(copy);
        return NULL;
    }
    return copy;
}

/* webrtc_ext.opus.join_frames, then RawRtpPacket.create around it: `count` packets (fields
 * in `f`, objects in `held`) as one code 3 packet of configuration `toc`. */
static PyObject *
joined_packet(PyObject *packer, PyObject *held, const PacketFields *f, Py_ssize_t count,
              long toc, PyObject *type)
{
    int cbr = 1;
    Py_ssize_t frames_size = 0, lengths_size = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        long long length = f[i].end - f[i].start - 1;
        if (length < 0) {
            PyErr_SetString(PyExc_ValueError, "an empty Opus packet cannot be joined");
            return NULL;
        }
        cbr = cbr && length == f[0].end - f[0].start - 1;
        frames_size += (Py_ssize_t)length;
        if (i < count - 1) {
            lengths_size += length < 252 ? 1 : 2;
        }
    }
    Py_ssize_t payload_size = 2 + (cbr ? 0 : lengths_size) + frames_size;
    PyObject *data = PyBytes_FromStringAndSize(NULL, 12 + payload_size);
    if (data == NULL) {
        return NULL;
    }
    PyObject *first = PyList_GET_ITEM(held, 0);
    PyObject *marker = fast_get(first, s_marker);
    int marked = marker == NULL ? -1 : PyObject_IsTrue(marker);
    PyObject *sequence = marked < 0 ? NULL : next_sequence(packer);
    if (sequence == NULL) {
        Py_XDECREF(marker);
        Py_DECREF(data);
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(data);
    out[0] = 0x80;
    out[1] = (unsigned char)((marked ? 0x80 : 0) | (f[0].payload_type & 0x7F));
    put16(out + 2, (unsigned int)PyLong_AsLong(sequence) & 0xFFFF);
    put32(out + 4, (uint32_t)f[0].timestamp);
    put32(out + 8, (uint32_t)f[0].ssrc);
    unsigned char *at = out + 12;
    *at++ = (unsigned char)((toc & 0xFC) | 3);
    *at++ = (unsigned char)(cbr ? count : 0x80 | count);
    for (Py_ssize_t i = 0; !cbr && i < count - 1; i++) {
        long length = (long)(f[i].end - f[i].start - 1);
        if (length < 252) {
            *at++ = (unsigned char)length;
        } else {
            long byte = 252 + (length & 3);
            *at++ = (unsigned char)byte;
            *at++ = (unsigned char)((length - byte) >> 2);
        }
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        const char *frame = PyBytes_AS_STRING(f[i].data) + f[i].start + 1;
        size_t length = (size_t)(f[i].end - f[i].start - 1);
        memcpy(at, frame, length);
        at += length;
    }
    PyObject *values[10] = {
        data, PyLong_FromLongLong(f[0].payload_type), marker, sequence,
        PyLong_FromLongLong(f[0].timestamp), PyLong_FromLongLong(f[0].ssrc),
        PyLong_FromLong(12), PyLong_FromSsize_t(12 + payload_size),
        fast_get(PyList_GET_ITEM(held, count - 1), s_arrival_time),
        fast_get(first, s_audio_level),
    };
    PyObject *joined = make_packet(type, values);
    if (joined == NULL || add_to(packer, s_packets_out, 1) < 0) {
        Py_XDECREF(joined);
        return NULL;
    }
    return joined;
}

/* OpusRepacketizer._flush_into: the held frames (fields in `f`) onto `out`. */
static int
flush_into(PyObject *packer, PyObject *held, const PacketFields *f, long toc, PyObject *out,
           PyObject *type)
{
    Py_ssize_t count = PyList_GET_SIZE(held);
    if (count == 0) {
        return 0;
    }
    PyObject *empty = PyList_New(0);
    if (empty == NULL) {
        return -1;
    }
    int result = fast_set(packer, s_held, empty);
    Py_DECREF(empty);
    if (result < 0) {
        return -1;
    }
    PyObject *packet = count == 1 ? renumbered(packer, PyList_GET_ITEM(held, 0), type)
                                  : joined_packet(packer, held, f, count, toc, type);
    if (packet == NULL) {
        return -1;
    }
    result = PyList_Append(out, packet);
    Py_DECREF(packet);
    return result;
}

/* OpusRepacketizer.push(packet) on `packer`'s attributes: a new list of the packets to send,
 * or None, with nothing changed, if the Python method must take it (a packet or a held frame
 * whose fields are not plain ints and bytes, a repacketizer in a state push never leaves). */
static PyObject *
opus_push_impl(PyObject *packer, PyObject *packet, PyObject *type)
{
    PacketFields fields[OPUS_MAX_HELD + 1];
    PacketFields *f = &fields[OPUS_MAX_HELD];
    PyObject *held = NULL, *out = NULL;
    long long frames = 0, toc_held = 0, size = 0;
    Py_ssize_t count = 0;
    int status = (PyObject *)Py_TYPE(packet) == type ? packet_fields(packet, f) : 1;
    if (status == 0) {
        if (((frames = get_long(packer, s_frames)) == -1 && PyErr_Occurred())
            || ((toc_held = get_long(packer, s_toc)) == -1 && PyErr_Occurred())
            || ((size = get_long(packer, s_bytes)) == -1 && PyErr_Occurred())
            || (held = fast_get(packer, s_held)) == NULL) {
            return NULL;
        }
        count = PyList_CheckExact(held) ? PyList_GET_SIZE(held) : -1;
        if (count < 0 || count >= OPUS_MAX_HELD || frames < 1 || frames > 6 || toc_held < 0
            || toc_held > 255) {
            status = 1;
        }
    }
    for (Py_ssize_t i = 0; status == 0 && i < count; i++) {
        PyObject *frame = PyList_GET_ITEM(held, i);
        status = (PyObject *)Py_TYPE(frame) == type ? packet_fields(frame, &fields[i]) : 1;
    }
    if (status != 0) {
        Py_XDECREF(held);
        if (status < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    /* From here on, as OpusRepacketizer.push. */
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(f->data);
    int single = f->end > f->start && (data[f->start] & 3) == 0
                 && f->end - f->start - 1 <= OPUS_MAX_FRAME_BYTES;
    if ((out = PyList_New(0)) == NULL || add_to(packer, s_packets_in, 1) < 0) {
        goto failed;
    }
    if (!single || frames == 1) {
        PyObject *copy = NULL;
        if (flush_into(packer, held, fields, (long)toc_held, out, type) < 0
            || (copy = renumbered(packer, packet, type)) == NULL || PyList_Append(out, copy) < 0) {
            Py_XDECREF(copy);
            goto failed;
        }
        Py_DECREF(copy);
        Py_DECREF(held);
        return out;
    }
    long toc = data[f->start];
    if (count) {
        const PacketFields *last = &fields[count - 1];
        long frame = frame_samples((long)toc_held);
        if (f->ssrc != last->ssrc || f->payload_type != last->payload_type
            || (toc & 0xFC) != (toc_held & 0xFC) || f->sequence != ((last->sequence + 1) & 0xFFFF)
            || f->timestamp != ((last->timestamp + frame) & 0xFFFFFFFFLL)
            || (count + 1) * frame > OPUS_MAX_PACKET_SAMPLES
            || size + (f->end - f->start) + 2 > OPUS_MAX_JOINED_BYTES) {
            if (flush_into(packer, held, fields, (long)toc_held, out, type) < 0) {
                goto failed;
            }
            count = 0;
        }
    }
    if (count == 0) {
        Py_SETREF(held, fast_get(packer, s_held)); /* the list flush_into left */
        if (held == NULL || !PyList_CheckExact(held)) {
            if (held != NULL) {
                PyErr_SetString(PyExc_TypeError, "OpusRepacketizer._held must be a list");
            }
            goto failed;
        }
        toc_held = toc;
        size = 2; /* the TOC and frame count bytes */
        if (set_long(packer, s_toc, toc) < 0) {
            goto failed;
        }
    }
    size += f->end - f->start + 1; /* the frame, and its length if the packet is VBR */
    if (PyList_Append(held, packet) < 0 || set_long(packer, s_bytes, size) < 0) {
        goto failed;
    }
    fields[count] = *f;
    if (count + 1 >= frames
        && flush_into(packer, held, fields, (long)toc_held, out, type) < 0) {
        goto failed;
    }
    Py_DECREF(held);
    return out;
failed:
    Py_XDECREF(held);
    Py_XDECREF(out);
    return NULL;
}

/* opus_push(packer, packet, packet_type): opus_push_impl, for the tests. */
static PyObject *
opus_push(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyType_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "opus_push(packer, packet, packet_type)");
        return NULL;
    }
    return opus_push_impl(args[0], args[1], args[2]);
}

/* RtpFanOut.receiver.is_opus(packet.payload_type), from the receiver's negotiated codecs:
 * 1, 0, or -1 on error. */
static int
is_opus(PyObject *receiver, PyObject *packet)
{
    PyObject *codecs = fast_get(receiver, s_negotiated_codecs);
    PyObject *type = codecs == NULL ? NULL : fast_get(packet, s_payload_type);
    PyObject *codec = type == NULL || !PyDict_Check(codecs) ? NULL
                                                           : PyDict_GetItemWithError(codecs, type);
    int opus = codec == NULL ? (PyErr_Occurred() ? -1 : 0) : 0;
    if (codec != NULL) {
        PyObject *mime = fast_get(codec, s_mime_type);
        if (mime == NULL) {
            opus = -1;
        } else if (PyUnicode_Check(mime)) {
            Py_ssize_t length;
            const char *text = PyUnicode_AsUTF8AndSize(mime, &length);
            opus = text == NULL ? -1 : length == 10 && strncasecmp(text, "audio/opus", 10) == 0;
        }
        Py_XDECREF(mime);
    }
    Py_XDECREF(type);
    Py_XDECREF(codecs);
    return opus;
}

static PyTypeObject SendPathType;
static PyObject *s_native_targets, *s_native, *s_media_held, *s_dtmf, *s_player, *s_playing;
static PyObject *s_munger, *s_outbound, *s_packets_dropped, *s_send_rtp, *s_forward_packed;
static PyObject *s_now, *s_source_kw, *kw_source_now;

typedef struct {
    PyObject_HEAD
    PyObject *fan;          /* the RtpFanOut */
    PyObject *report_names; /* the sender's (packet count, octet count, NTP, RTP timestamp) */
    PyObject *packet_type;  /* RawRtpPacket: what joined Opus frames are sent as */
} FanOut;

static int
FanOut_traverse(FanOut *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fan);
    Py_VISIT(self->packet_type);
    return 0;
}

static int
FanOut_clear(FanOut *self)
{
    Py_CLEAR(self->fan);
    Py_CLEAR(self->report_names);
    Py_CLEAR(self->packet_type);
    return 0;
}

static void
FanOut_dealloc(FanOut *self)
{
    PyObject_GC_UnTrack(self);
    FanOut_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
FanOut_init(FanOut *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"fan", "report_names", "packet_type", NULL};
    PyObject *fan, *names, *packet_type;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!O!", keywords, &fan, &PyTuple_Type, &names,
                                     &PyType_Type, &packet_type)) {
        return -1;
    }
    if (PyTuple_GET_SIZE(names) != 4) {
        PyErr_SetString(PyExc_ValueError, "report_names: four attribute names");
        return -1;
    }
    FanOut_clear(self);
    Py_INCREF(fan);
    self->fan = fan;
    Py_INCREF(names);
    self->report_names = names;
    Py_INCREF(packet_type);
    self->packet_type = packet_type;
    return 0;
}

/* RTCRtpSender.send_rtp(packet, source=source, now=now) for one sender, the common case in C:
 * 1 sent or dropped (counted as send_rtp counts it), 0 if send_rtp itself must take it
 * (nothing done), -1 on error. `hold` is how the sender holds media back: 0 never, 1 while
 * its DTMF sender plays a tone (DtmfSenderMixin._media_may_send). */
static int
send_fast(FanOut *self, PyObject *sender, long hold, PyObject *packet, PyObject *source,
          PyObject *now)
{
    PyObject *path = fast_get(sender, s_native);
    if (path == NULL) {
        return -1;
    }
    if (!Py_IS_TYPE(path, &SendPathType)) {
        Py_DECREF(path);
        return 0;
    }
    int taken = 0;
    PyObject *value = NULL, *munger = NULL, *outbound = NULL, *sent = NULL;
    if ((value = fast_get(sender, s_media_held)) == NULL) {
        taken = -1;
        goto done;
    }
    int held = value != Py_False;
    Py_CLEAR(value);
    if (held) {
        goto done; /* resuming after a hold starts a segment: send_rtp does it */
    }
    if (hold == 1) {
        PyObject *object = fast_get(sender, s_dtmf);
        if (object != NULL && object != Py_None) {
            Py_SETREF(object, fast_get(object, s_player));
            if (object != NULL && object != Py_None) {
                Py_SETREF(object, fast_get(object, s_playing));
                held = object != NULL && object != Py_None;
            }
        }
        if (object == NULL) {
            taken = -1;
            goto done;
        }
        Py_DECREF(object);
        if (held) {
            goto done; /* a tone plays: send_rtp holds the packet back and counts it */
        }
    }
    munger = fast_get(sender, s_munger);
    outbound = munger == NULL ? NULL : fast_get(sender, s_outbound);
    if (outbound == NULL) {
        taken = -1;
        goto done;
    }
    if (munger == Py_None || outbound == Py_None) {
        goto done;
    }
    PyObject *args[5] = {outbound, munger, packet, source, now};
    sent = SendPath_send_media((SendPath *)path, args, 5);
    if (sent == NULL) {
        taken = -1;
    } else if (sent == Py_False) {
        taken = add_to(sender, s_packets_dropped, 1) < 0 ? -1 : 1;
    } else if (sent != Py_None) {
        /* RTCRtpSender._account, then the sender report's wall clock / media time pair. */
        PyObject *names = self->report_names;
        PyObject *packets = fast_get(outbound, s_packet_count);
        PyObject *octets = packets == NULL ? NULL : fast_get(outbound, s_octet_count);
        PyObject *stamp = octets == NULL ? NULL : fast_get(outbound, s_last_timestamp);
        taken = stamp == NULL
                        || fast_set(sender, PyTuple_GET_ITEM(names, 0), packets) < 0
                        || fast_set(sender, PyTuple_GET_ITEM(names, 1), octets) < 0
                        || fast_set(sender, PyTuple_GET_ITEM(names, 2), sent) < 0
                        || fast_set(sender, PyTuple_GET_ITEM(names, 3), stamp) < 0
                    ? -1
                    : 1;
        Py_XDECREF(packets);
        Py_XDECREF(octets);
        Py_XDECREF(stamp);
    }
done:
    Py_XDECREF(sent);
    Py_XDECREF(munger);
    Py_XDECREF(outbound);
    Py_DECREF(path);
    return taken;
}

/* sender.send_rtp(packet, source=source, now=now), its common case in C (send_fast) where
 * `hold` says how; 0 once sent, -1 on error. */
static int
send_one(FanOut *self, PyObject *sender, PyObject *hold, PyObject *packet, PyObject *source,
         PyObject *now)
{
    int taken = 0;
    if (hold != Py_None) {
        long mode = PyLong_AsLong(hold);
        if (mode == -1 && PyErr_Occurred()) {
            return -1;
        }
        taken = send_fast(self, sender, mode, packet, source, now);
    }
    if (taken) {
        return taken < 0 ? -1 : 0;
    }
    PyObject *method = fast_get(sender, s_send_rtp);
    if (method == NULL) {
        return -1;
    }
    PyObject *call[4] = {NULL, packet, source, now};
    PyObject *returned = PyObject_Vectorcall(method, call + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                             kw_source_now);
    Py_DECREF(method);
    Py_XDECREF(returned);
    return returned == NULL ? -1 : 0;
}

/* RtpFanOut._forward_packed for one destination that takes joined Opus frames: the
 * repacketizer's push and each packet it gives sent as above; 0, or -1 on error. */
static int
send_packed(FanOut *self, PyObject *sender, PyObject *packer, PyObject *hold, PyObject *packet,
            PyObject *source, PyObject *now)
{
    PyObject *receiver = fast_get(self->fan, s_receiver);
    int opus = receiver == NULL ? -1 : is_opus(receiver, packet);
    Py_XDECREF(receiver);
    if (opus <= 0) {
        return opus < 0 ? -1 : send_one(self, sender, hold, packet, source, now);
    }
    PyObject *out = opus_push_impl(packer, packet, self->packet_type);
    if (out == NULL) {
        return -1;
    }
    if (out == Py_None) { /* not a plain packet: the Python method, which pushes it too */
        Py_DECREF(out);
        PyObject *returned = PyObject_CallMethodObjArgs(self->fan, s_forward_packed, sender,
                                                        packer, packet, NULL);
        Py_XDECREF(returned);
        return returned == NULL ? -1 : 0;
    }
    int result = 0;
    for (Py_ssize_t i = 0; result == 0 && i < PyList_GET_SIZE(out); i++) {
        result = send_one(self, sender, hold, PyList_GET_ITEM(out, i), source, now);
    }
    Py_DECREF(out);
    return result;
}

/* forward(packet): RtpFanOut._forward, the receiver's on_rtp callback. */
static PyObject *
FanOut_forward(FanOut *self, PyObject *packet)
{
    PyObject *targets = fast_get(self->fan, s_native_targets);
    PyObject *source = targets == NULL ? NULL : fast_get(self->fan, s_source_kw);
    PyObject *now = source == NULL ? NULL : fast_get(packet, s_arrival_time);
    PyObject *result = NULL;
    if (now == NULL) {
        goto done;
    }
    if (!PyTuple_Check(targets)) {
        PyErr_SetString(PyExc_TypeError, "_native_targets must be a tuple");
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(targets); i++) {
        PyObject *target = PyTuple_GET_ITEM(targets, i);
        if (!PyTuple_Check(target) || PyTuple_GET_SIZE(target) != 3) {
            PyErr_SetString(PyExc_TypeError, "a fan-out target is (sender, packer, hold)");
            goto done;
        }
        PyObject *sender = PyTuple_GET_ITEM(target, 0), *packer = PyTuple_GET_ITEM(target, 1);
        PyObject *hold = PyTuple_GET_ITEM(target, 2);
        if ((packer == Py_None ? send_one(self, sender, hold, packet, source, now)
                               : send_packed(self, sender, packer, hold, packet, source, now))
            < 0) {
            goto done;
        }
    }
    result = Py_None;
    Py_INCREF(result);
done:
    Py_XDECREF(now);
    Py_XDECREF(source);
    Py_XDECREF(targets);
    return result;
}

static PyMethodDef FanOut_methods[] = {
    {"forward", (PyCFunction)FanOut_forward, METH_O,
     "forward(packet): RtpFanOut._forward in C (the receiver's on_rtp callback)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FanOutType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "webrtc_ext._native.FanOut",
    .tp_basicsize = sizeof(FanOut),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One RtpFanOut's forwarding (see webrtc_ext.native).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)FanOut_init,
    .tp_dealloc = (destructor)FanOut_dealloc,
    .tp_traverse = (traverseproc)FanOut_traverse,
    .tp_clear = (inquiry)FanOut_clear,
    .tp_methods = FanOut_methods,
};

static PyMethodDef SendPath_methods[] = {
    {"send", (PyCFunction)(void (*)(void))SendPath_send, METH_FASTCALL,
     "send(outbound, packet, sequence_number, timestamp): write, protect, send and count one "
     "packet; the NTP time it was written with, or None if the path no longer holds."},
    {"send_media", (PyCFunction)(void (*)(void))SendPath_send_media, METH_FASTCALL,
     "send_media(outbound, munger, packet, source, now): RtpMunger.munge's common case, then "
     "send(); False if the munger dropped the packet, None if the path no longer holds or "
     "the packet starts a segment (the caller takes the Python path)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SendPathType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "webrtc_ext._native.SendPath",
    .tp_basicsize = sizeof(SendPath),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One raw sender's route to the wire (see webrtc_ext.native).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)SendPath_init,
    .tp_dealloc = (destructor)SendPath_dealloc,
    .tp_traverse = (traverseproc)SendPath_traverse,
    .tp_clear = (inquiry)SendPath_clear,
    .tp_methods = SendPath_methods,
};

/* ---------------------------------------------------------------------------------------- */
/* RecvPath                                                                                 */

typedef struct {
    PyObject_HEAD
    PyObject *transport;
    PyObject *session;       /* transport._rx_srtp when built */
    PyObject *chain;
    PyObject *stages;        /* chain._stages when built: () or (RtpStatsInterceptor,) */
    PyObject *rx_bytes_name;
    PyObject *rx_packets_name;
    PyObject *stats;         /* RtpCounters, or None */
    PyObject *clock;
    PyObject *error_type;
    PyObject *reasons;
    PyObject *packet_type;   /* RawRtpPacket */
    PyObject *receiver_type; /* RawRtpReceiverMixin: only its raw receivers are delivered */
    PyObject *failed;        /* failed(callback, exception): logs a callback that raised */
    PyObject *event_stage_type; /* TelephoneEventInterceptor, or None */
    srtp_function unprotect;
    void *context;
} RecvPath;

static int
RecvPath_traverse(RecvPath *self, visitproc visit, void *arg)
{
    Py_VISIT(self->transport);
    Py_VISIT(self->session);
    Py_VISIT(self->chain);
    Py_VISIT(self->stages);
    Py_VISIT(self->stats);
    Py_VISIT(self->clock);
    Py_VISIT(self->error_type);
    Py_VISIT(self->reasons);
    Py_VISIT(self->packet_type);
    Py_VISIT(self->receiver_type);
    Py_VISIT(self->failed);
    Py_VISIT(self->event_stage_type);
    return 0;
}

static int
RecvPath_clear(RecvPath *self)
{
    Py_CLEAR(self->transport);
    Py_CLEAR(self->session);
    Py_CLEAR(self->chain);
    Py_CLEAR(self->stages);
    Py_CLEAR(self->rx_bytes_name);
    Py_CLEAR(self->rx_packets_name);
    Py_CLEAR(self->stats);
    Py_CLEAR(self->clock);
    Py_CLEAR(self->error_type);
    Py_CLEAR(self->reasons);
    Py_CLEAR(self->packet_type);
    Py_CLEAR(self->receiver_type);
    Py_CLEAR(self->failed);
    Py_CLEAR(self->event_stage_type);
    return 0;
}

static void
RecvPath_dealloc(RecvPath *self)
{
    PyObject_GC_UnTrack(self);
    RecvPath_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
RecvPath_init(RecvPath *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"transport", "session", "chain", "stages", "rx_bytes_name",
                               "rx_packets_name", "stats", "clock", "error_type", "reasons",
                               "packet_type", "unprotect", "context", "receiver_type",
                               "failed", "event_stage_type", NULL};
    PyObject *transport, *session, *chain, *stages, *rx_bytes_name, *rx_packets_name, *stats;
    PyObject *clock, *error_type, *reasons, *packet_type;
    PyObject *receiver_type = Py_None, *failed = Py_None, *event_stage_type = Py_None;
    unsigned long long unprotect, context;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO!UUOOOO!O!KK|OOO", keywords, &transport,
                                     &session, &chain, &PyTuple_Type, &stages, &rx_bytes_name,
                                     &rx_packets_name, &stats, &clock, &error_type,
                                     &PyTuple_Type, &reasons, &PyType_Type, &packet_type,
                                     &unprotect, &context, &receiver_type, &failed,
                                     &event_stage_type)) {
        return -1;
    }
    if (unprotect == 0 || context == 0) {
        PyErr_SetString(PyExc_ValueError, "invalid receive path parameters");
        return -1;
    }
    RecvPath_clear(self);
#define KEEP(field) Py_INCREF(field); self->field = field
    KEEP(transport);
    KEEP(session);
    KEEP(chain);
    KEEP(stages);
    KEEP(rx_bytes_name);
    KEEP(rx_packets_name);
    KEEP(stats);
    KEEP(clock);
    KEEP(error_type);
    KEEP(reasons);
    KEEP(packet_type);
    KEEP(receiver_type);
    KEEP(failed);
    KEEP(event_stage_type);
#undef KEEP
    self->unprotect = (srtp_function)(uintptr_t)unprotect;
    self->context = (void *)(uintptr_t)context;
    return 0;
}

/* RtpCounters.rtp_received for one packet (its _parse_rtp, then the stream's counters). */
static int
count_received(RecvPath *self, const unsigned char *plain, int length)
{
    if (self->stats == Py_None) {
        return 0;
    }
    /* _parse_rtp: (ssrc, sequence, header with extension and padding) or malformed. */
    Py_ssize_t header = 12 + 4 * (plain[0] & 0x0F);
    int malformed = 0;
    if (plain[0] & 0x10) {
        if (length < header + 4) {
            malformed = 1;
        } else {
            header += 4 + 4 * get16(plain + header + 2);
        }
    }
    if (!malformed && (plain[0] & 0x20) && length > header) {
        header += plain[length - 1];
    }
    if (malformed || header > length) {
        return add_to(self->stats, s_malformed, 1);
    }
    unsigned int sequence = get16(plain + 2);
    uint32_t ssrc = get32(plain + 8);
    PyObject *now;
    if (read_clock(self->clock, &now) < 0) {
        return -1;
    }
    PyObject *streams = fast_get(self->stats, s_received);
    PyObject *key = streams == NULL ? NULL : PyLong_FromUnsignedLong(ssrc);
    PyObject *stream = key == NULL || !PyDict_Check(streams)
                           ? NULL
                           : PyDict_GetItemWithError(streams, key);
    Py_XDECREF(key);
    Py_XDECREF(streams);
    if (stream == NULL) {
        /* The stream's first packet: RtpCounters counts it itself. */
        if (PyErr_Occurred()) {
            Py_DECREF(now);
            return -1;
        }
        PyObject *data = PyBytes_FromStringAndSize((const char *)plain, length);
        PyObject *result =
            data == NULL ? NULL
                         : PyObject_CallMethodObjArgs(self->stats, s_rtp_received, data, now, NULL);
        Py_XDECREF(data);
        Py_DECREF(now);
        Py_XDECREF(result);
        return result == NULL ? -1 : 0;
    }
    Py_INCREF(stream);
    int failed = add_to(stream, s_packets, 1) < 0
                 || add_to(stream, s_payload_bytes, length - header) < 0
                 || add_to(stream, s_header_bytes, header) < 0
                 || fast_set(stream, s_last_received, now) < 0;
    Py_DECREF(now);
    if (!failed) {
        PyObject *base = fast_get(stream, s_base_sequence);
        long long highest = base == NULL ? -1 : get_long(stream, s_highest_sequence);
        if (base == NULL || (highest == -1 && PyErr_Occurred())) {
            failed = 1;
        } else if (base == Py_None) {
            failed = set_long(stream, s_base_sequence, sequence) < 0
                     || set_long(stream, s_highest_sequence, sequence) < 0;
        } else {
            unsigned int step = (sequence - (unsigned int)highest) & 0xFFFF;
            if (0 < step && step < 0x8000) {
                if ((long long)sequence < highest) {
                    failed = add_to(stream, s_cycles, 1 << 16) < 0;
                }
                failed = failed || set_long(stream, s_highest_sequence, sequence) < 0;
            }
        }
        Py_XDECREF(base);
    }
    Py_DECREF(stream);
    return failed ? -1 : 0;
}

/* RawRtpPacket.parse's checks and fields; NULL with ValueError if the packet is malformed. */
static PyObject *
parse_packet(RecvPath *self, const unsigned char *plain, int length, PyObject *arrival,
             long audio_level_id)
{
    if (length < 12) {
        PyErr_SetString(PyExc_ValueError, "RTP packet is shorter than its 12-byte fixed header");
        return NULL;
    }
    unsigned int first = plain[0], second = plain[1];
    if (first >> 6 != 2) {
        PyErr_Format(PyExc_ValueError, "RTP version %u is not 2 (RFC 3550 §5.1)", first >> 6);
        return NULL;
    }
    long start = 12 + 4 * (long)(first & 0x0F);
    long end = length;
    long level = -1;
    if (first & 0x10) {
        if (end < start + 4) {
            PyErr_SetString(PyExc_ValueError, "RTP header extension is truncated (RFC 3550 §5.3.1)");
            return NULL;
        }
        unsigned int profile = get16(plain + start);
        long words = (long)get16(plain + start + 2);
        long position = start + 4;
        start = start + 4 + 4 * words;
        if (start > end) {
            PyErr_SetString(PyExc_ValueError, "RTP header extension is truncated (RFC 3550 §5.3.1)");
            return NULL;
        }
        if (audio_level_id && profile == 0xBEDE) {
            /* _one_byte_element (RFC 8285 §4.2) */
            while (position < start) {
                unsigned int byte = plain[position];
                if (byte == 0) {
                    position += 1;
                    continue;
                }
                long id = byte >> 4, size = (byte & 0x0F) + 1;
                if (id == 15) {
                    break;
                }
                if (id == audio_level_id && position + 1 < start) {
                    level = plain[position + 1];
                    break;
                }
                position += 1 + size;
            }
        }
    }
    if (first & 0x20) {
        unsigned int padding = plain[length - 1];
        if (end <= start || padding == 0 || padding > end - start) {
            PyErr_SetString(PyExc_ValueError, "RTP padding length is invalid (RFC 3550 §5.1)");
            return NULL;
        }
        end -= padding;
    }
    if (start > end) {
        PyErr_SetString(PyExc_ValueError, "RTP packet is shorter than its header");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)self->packet_type;
    PyObject *packet = type->tp_alloc(type, 0);
    if (packet == NULL) {
        return NULL;
    }
    PyObject *values[9];
    values[0] = PyBytes_FromStringAndSize((const char *)plain, length);
    values[1] = PyLong_FromLong(second & 0x7F);
    values[2] = PyBool_FromLong(second & 0x80);
    values[3] = PyLong_FromLong((long)get16(plain + 2));
    values[4] = PyLong_FromUnsignedLong(get32(plain + 4));
    values[5] = PyLong_FromUnsignedLong(get32(plain + 8));
    values[6] = PyLong_FromLong(start);
    values[7] = PyLong_FromLong(end);
    if (level < 0) {
        Py_INCREF(Py_None);
        values[8] = Py_None;
    } else {
        values[8] = PyLong_FromLong(level);
    }
    PyObject *names[9] = {s_data, s_payload_type, s_marker, s_sequence_number, s_timestamp,
                          s_ssrc, s_payload_start, s_payload_end, s_audio_level};
    int failed = 0;
    for (int i = 0; i < 9; i++) {
        if (values[i] == NULL || (!failed && fast_set(packet, names[i], values[i]) < 0)) {
            failed = 1;
        }
        Py_XDECREF(values[i]);
    }
    if (failed || fast_set(packet, s_arrival_time, arrival) < 0) {
        Py_DECREF(packet);
        return NULL;
    }
    return packet;
}

static PyObject *unprotect_packet(RecvPath *self, PyObject *data, PyObject *arrival,
                                  long audio_level_id);

/* 1 if the transport still has the SRTP session and stages the path was built for, 0 if
 * not, -1 on error. */
static int
RecvPath_valid(RecvPath *self)
{
    int same = attr_is(self->transport, s_rx_srtp, self->session);
    return same == 1 ? attr_is(self->chain, s_stages, self->stages) : same;
}

/* receive(data, arrival, audio_level_id) -> RawRtpPacket, or None if the path no longer holds.
 * Raises pylibsrtp.Error if the packet does not verify, ValueError if it is malformed (after
 * counting it, as the Python path does). */
static PyObject *
RecvPath_receive(RecvPath *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "receive() takes 3 arguments");
        return NULL;
    }
    PyObject *data = args[0], *arrival = args[1];
    long audio_level_id = PyLong_AsLong(args[2]);
    if (audio_level_id == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "packet must be bytes");
        return NULL;
    }
    int valid = RecvPath_valid(self);
    if (valid <= 0) {
        if (valid < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    return unprotect_packet(self, data, arrival, audio_level_id);
}

/* The SRTP packet `data` unprotected, counted and parsed (the path already checked valid). */
static PyObject *
unprotect_packet(RecvPath *self, PyObject *data, PyObject *arrival, long audio_level_id)
{
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    if (size > SRTP_BUFFER) {
        PyErr_SetString(PyExc_ValueError, "packet is too long");
        return NULL;
    }
    unsigned char buffer[SRTP_BUFFER];
    memcpy(buffer, PyBytes_AS_STRING(data), (size_t)size);
    int length = (int)size;
    int status = self->unprotect(self->context, buffer, &length);
    if (status) {
        srtp_error(self->error_type, self->reasons, status);
        return NULL;
    }
    if (add_to(self->transport, self->rx_bytes_name, size) < 0
        || add_to(self->transport, self->rx_packets_name, 1) < 0) {
        return NULL;
    }
    if (length >= 12 && count_received(self, buffer, length) < 0) {
        return NULL;
    }
    if (length < 12 && self->stats != Py_None && add_to(self->stats, s_malformed, 1) < 0) {
        return NULL;
    }
    return parse_packet(self, buffer, length, arrival, audio_level_id);
}

static PyObject *stream_add(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
static PyObject *s_counters, *s_packets_received_ice, *s_bytes_received, *s_rtp_router;
static PyObject *s_ssrc_table, *s_raw, *s_enabled, *s_rtp_queues, *s_interceptors;
static PyObject *s_audio_level_id, *s_stream_statistics;
static PyObject *s_rtp_callbacks, *s_deliver_raw, *s_last_packet, *s_clock_rates;

/* 1 if the TelephoneEventInterceptor `stage` passes `packet` of a raw receiver untouched (its
 * payload type is not a telephone-event one), 0 if the stage must see it, -1 on error. */
static int
event_stage_passes(PyObject *stage, PyObject *packet)
{
    PyObject *rates = fast_get(stage, s_clock_rates);
    PyObject *type = rates == NULL ? NULL : fast_get(packet, s_payload_type);
    int passes = -1;
    if (type != NULL) {
        passes = PyDict_Check(rates) ? !PyDict_Contains(rates, type) : 0;
        if (PyErr_Occurred()) {
            passes = -1;
        }
    }
    Py_XDECREF(type);
    Py_XDECREF(rates);
    return passes;
}

static double
monotonic_clock(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/* deliver(protocol, data, addr): one datagram from the ICE socket, through to the receiver's
 * callbacks, as IceProtocol._handle_datagram, IceConnection.data_received,
 * RtpFastPathMixin._datagram_received and RawRtpReceiverMixin._deliver / _deliver_raw do it.
 * False, with nothing done, for anything but SRTP of a known SSRC for a raw receiver with no
 * packet iterator on a path that still holds: the caller takes the Python path. True once the
 * packet was taken (delivered, consumed by a receiver stage, or dropped as aiortc drops a
 * payload type it did not negotiate). Raises pylibsrtp.Error or ValueError (after counting,
 * as the Python path) for a packet that does not verify or parse. */
static PyObject *
RecvPath_deliver(RecvPath *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "deliver() takes 3 arguments");
        return NULL;
    }
    PyObject *protocol = args[0], *data = args[1], *addr = args[2];
    if (!PyBytes_Check(data) || self->receiver_type == Py_None) {
        Py_RETURN_FALSE;
    }
    const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    if (size < 12 || bytes[0] < 128 || bytes[0] > 191 || (bytes[1] > 191 && bytes[1] < 224)) {
        Py_RETURN_FALSE; /* not RTP: STUN, DTLS, RTCP, runts */
    }
    int valid = RecvPath_valid(self);
    if (valid <= 0) {
        if (valid < 0) {
            return NULL;
        }
        Py_RETURN_FALSE;
    }
    /* The pair's counters (IceProtocol.peer_counters: made by the Python path's first). */
    PyObject *all_counters = fast_get(protocol, s_counters);
    if (all_counters == NULL) {
        return NULL;
    }
    PyObject *peer = PyDict_Check(all_counters) ? PyDict_GetItemWithError(all_counters, addr)
                                                : NULL;
    Py_XINCREF(peer);
    Py_DECREF(all_counters);
    if (peer == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_FALSE;
    }
    /* The receiver the router knows the SSRC for (an unknown one is learnt in Python). */
    uint32_t ssrc = get32(bytes + 8);
    PyObject *router = fast_get(self->transport, s_rtp_router);
    PyObject *table = router == NULL ? NULL : fast_get(router, s_ssrc_table);
    Py_XDECREF(router);
    PyObject *key = table == NULL ? NULL : PyLong_FromUnsignedLong(ssrc);
    PyObject *receiver = key == NULL || !PyDict_Check(table) ? NULL
                                                            : PyDict_GetItemWithError(table, key);
    Py_XINCREF(receiver);
    Py_XDECREF(key);
    Py_XDECREF(table);
    PyObject *result = NULL, *packet = NULL, *queues = NULL, *value = NULL;
    if (receiver == NULL) {
        if (!PyErr_Occurred()) {
            result = Py_False;
            Py_INCREF(result);
        }
        goto done;
    }
    int raw = PyObject_IsInstance(receiver, self->receiver_type);
    if (raw == 1) {
        value = fast_get(receiver, s_raw);
        raw = value == NULL ? -1 : value == Py_True;
        Py_XDECREF(value);
    }
    if (raw == 1) {
        queues = fast_get(receiver, s_rtp_queues);
        raw = queues == NULL ? -1 : (PyList_Check(queues) && PyList_GET_SIZE(queues) == 0);
    }
    if (raw != 1) {
        if (raw == 0) {
            result = Py_False;
            Py_INCREF(result);
        }
        goto done;
    }
    /* From here on the packet is taken. IceProtocol._handle_datagram's counters: */
    if (add_to(peer, s_packets_received_ice, 1) < 0 || add_to(peer, s_bytes_received, size) < 0
        || set_double(peer, s_last_received, wall_clock()) < 0) {
        goto done;
    }
    long level_id = (long)get_long(receiver, s_audio_level_id);
    if (level_id == -1 && PyErr_Occurred()) {
        goto done;
    }
    PyObject *arrival = PyFloat_FromDouble(monotonic_clock());
    if (arrival == NULL) {
        goto done;
    }
    packet = unprotect_packet(self, data, arrival, level_id);
    if (packet == NULL) {
        Py_DECREF(arrival);
        goto done;
    }
    /* RawRtpReceiverMixin._deliver: enabled, then the receiver's stages (which may consume). */
    value = fast_get(receiver, s_enabled);
    int enabled = value == NULL ? -1 : PyObject_IsTrue(value);
    Py_XDECREF(value);
    if (enabled != 1) {
        Py_DECREF(arrival);
        if (enabled == 0) {
            result = Py_True;
            Py_INCREF(result);
        }
        goto done;
    }
    PyObject *stages = fast_get(receiver, s_interceptors);
    int passed = 1;
    if (stages == NULL) {
        Py_DECREF(arrival);
        goto done;
    }
    PyObject *chain_stages = fast_get(stages, s_stages);
    int skip = 0;
    if (chain_stages != NULL && PyTuple_Check(chain_stages) && PyTuple_GET_SIZE(chain_stages) == 1
        && self->event_stage_type != Py_None
        && (PyObject *)Py_TYPE(PyTuple_GET_ITEM(chain_stages, 0)) == self->event_stage_type) {
        /* TelephoneEventInterceptor.rtp_received on a raw receiver passes every packet
         * whose payload type is not one of its telephone-event types, doing nothing. */
        skip = event_stage_passes(PyTuple_GET_ITEM(chain_stages, 0), packet);
        if (skip < 0) {
            Py_DECREF(chain_stages);
            Py_DECREF(stages);
            Py_DECREF(arrival);
            goto done;
        }
    }
    if (!skip && (chain_stages == NULL
                  || (PyTuple_Check(chain_stages) && PyTuple_GET_SIZE(chain_stages)))) {
        PyObject *kept = chain_stages == NULL
                             ? NULL
                             : PyObject_CallMethodObjArgs(stages, s_rtp_received, packet, arrival,
                                                          NULL);
        passed = kept == NULL ? -1 : PyObject_IsTrue(kept);
        Py_XDECREF(kept);
    }
    Py_XDECREF(chain_stages);
    Py_DECREF(stages);
    Py_DECREF(arrival);
    if (passed != 1) {
        if (passed == 0) {
            result = Py_True;
            Py_INCREF(result);
        }
        goto done;
    }
    /* RawRtpReceiverMixin._deliver_raw: a negotiated payload type, the stream's statistics. */
    PyObject *codecs = fast_get(receiver, s_negotiated_codecs);
    if (codecs == NULL) {
        goto done;
    }
    value = fast_get(packet, s_payload_type);
    PyObject *codec = value == NULL || !PyDict_Check(codecs) ? NULL
                                                            : PyDict_GetItemWithError(codecs, value);
    Py_XDECREF(value);
    Py_DECREF(codecs);
    if (codec == NULL) {
        if (!PyErr_Occurred()) {
            result = Py_True; /* not negotiated: dropped, as aiortc drops it */
            Py_INCREF(result);
        }
        goto done;
    }
    PyObject *streams = fast_get(receiver, s_stream_statistics);
    PyObject *ssrc_key = streams == NULL ? NULL : PyLong_FromUnsignedLong(ssrc);
    PyObject *stream = ssrc_key == NULL || !PyDict_Check(streams)
                           ? NULL
                           : PyDict_GetItemWithError(streams, ssrc_key);
    Py_XINCREF(stream);
    Py_XDECREF(ssrc_key);
    Py_XDECREF(streams);
    if (stream == NULL) {
        if (PyErr_Occurred()) {
            goto done;
        }
        /* A new stream: _deliver_raw makes its statistics, then delivers. */
        result = PyObject_CallMethodOneArg(receiver, s_deliver_raw, packet);
        if (result != NULL) {
            Py_DECREF(result);
            result = Py_True;
            Py_INCREF(result);
        }
        goto done;
    }
    PyObject *add_args[2] = {stream, packet};
    PyObject *added = stream_add(NULL, add_args, 2);
    Py_DECREF(stream);
    if (added == NULL) {
        goto done;
    }
    Py_DECREF(added);
    /* The callbacks, each on its own: one that raises is logged and the others still run. */
    PyObject *callbacks = fast_get(receiver, s_rtp_callbacks);
    if (callbacks == NULL) {
        goto done;
    }
    /* RawRtpReceiverMixin._last_packet (its last_arrival and audio_level read it). */
    if (fast_set(receiver, s_last_packet, packet) < 0) {
        Py_DECREF(callbacks);
        goto done;
    }
    /* A tuple, replaced when a callback is added or removed: iterated as it was. */
    for (Py_ssize_t i = 0; PyTuple_Check(callbacks) && i < PyTuple_GET_SIZE(callbacks); i++) {
        PyObject *callback = PyTuple_GET_ITEM(callbacks, i);
        Py_INCREF(callback);
        PyObject *returned = PyObject_CallOneArg(callback, packet);
        if (returned == NULL) {
            PyObject *type, *exception, *traceback;
            PyErr_Fetch(&type, &exception, &traceback);
            PyErr_NormalizeException(&type, &exception, &traceback);
            if (exception != NULL && traceback != NULL) {
                PyException_SetTraceback(exception, traceback);
            }
            PyObject *logged = PyObject_CallFunctionObjArgs(
                self->failed, callback, exception == NULL ? Py_None : exception, NULL);
            Py_XDECREF(type);
            Py_XDECREF(exception);
            Py_XDECREF(traceback);
            if (logged == NULL) {
                Py_DECREF(callback);
                Py_DECREF(callbacks);
                goto done;
            }
            Py_DECREF(logged);
        } else {
            Py_DECREF(returned);
        }
        Py_DECREF(callback);
    }
    Py_DECREF(callbacks);
    result = Py_True;
    Py_INCREF(result);
done:
    Py_XDECREF(packet);
    Py_XDECREF(queues);
    Py_XDECREF(receiver);
    Py_DECREF(peer);
    return result;
}

static PyMethodDef RecvPath_methods[] = {
    {"receive", (PyCFunction)(void (*)(void))RecvPath_receive, METH_FASTCALL,
     "receive(data, arrival, audio_level_id): unprotect, count and parse one SRTP packet; "
     "None if the path no longer holds."},
    {"deliver", (PyCFunction)(void (*)(void))RecvPath_deliver, METH_FASTCALL,
     "deliver(protocol, data, addr): one datagram from the ICE socket to the raw receiver's "
     "callbacks; False (nothing done) if the Python path must take it."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RecvPathType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "webrtc_ext._native.RecvPath",
    .tp_basicsize = sizeof(RecvPath),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One transport's SRTP reception (see webrtc_ext.native).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)RecvPath_init,
    .tp_dealloc = (destructor)RecvPath_dealloc,
    .tp_traverse = (traverseproc)RecvPath_traverse,
    .tp_clear = (inquiry)RecvPath_clear,
    .tp_methods = RecvPath_methods,
};

/* ---------------------------------------------------------------------------------------- */
/* aiortc's StreamStatistics.add                                                            */

static PyObject *s_max_seq, *s_packets_received, *s_base_seq, *s_clockrate, *s_jitter_q4;
static PyObject *s_last_arrival, *s_last_stamp, *s_add;

/* stream_add(stream, packet[, now]): aiortc.rtcrtpreceiver.StreamStatistics.add(packet), with
 * `now` (seconds since the epoch) for time.time(). A stream in a state the C form does not
 * cover (its first packet, a field that is not an int) is given to the method itself. */
static PyObject *
stream_add(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 && nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "stream_add() takes 2 or 3 arguments");
        return NULL;
    }
    PyObject *stream = args[0], *packet = args[1];
    PyObject *names[6] = {s_max_seq, s_packets_received, s_base_seq, s_cycles, s_clockrate,
                          s_jitter_q4};
    long long v[8];
    int covered = 1;
    for (int i = 0; i < 8 && covered; i++) {
        PyObject *name = i < 6 ? names[i] : (i == 6 ? s_last_arrival : s_last_stamp);
        PyObject *value = fast_get(stream, name);
        if (value == NULL) {
            return NULL;
        }
        int overflow = 0;
        if (PyLong_CheckExact(value)) {
            v[i] = PyLong_AsLongLongAndOverflow(value, &overflow);
            covered = !overflow;
        } else {
            covered = 0;
        }
        Py_DECREF(value);
    }
    if (!covered) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        return PyObject_CallMethodOneArg(stream, s_add, packet);
    }
    long long sequence = get_long(packet, s_sequence_number);
    long long timestamp = sequence == -1 && PyErr_Occurred() ? -1 : get_long(packet, s_timestamp);
    if (timestamp == -1 && PyErr_Occurred()) {
        return NULL;
    }
    double now;
    if (nargs == 3) {
        now = PyFloat_AsDouble(args[2]);
        if (now == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
    } else {
        now = wall_clock();
    }
    long long max_seq = v[0], received = v[1] + 1, cycles = v[3], clockrate = v[4];
    long long jitter = v[5], last_arrival = v[6], last_timestamp = v[7];
    /* aiortc.utils.uint16_gt(sequence, max_seq) */
    int in_order = (sequence < max_seq && max_seq - sequence > 0x8000)
                   || (sequence > max_seq && sequence - max_seq < 0x8000);
    if (set_long(stream, s_packets_received, received) < 0) {
        return NULL;
    }
    if (in_order) {
        long long arrival = (long long)(now * (double)clockrate);
        if (sequence < max_seq && set_long(stream, s_cycles, cycles + (1 << 16)) < 0) {
            return NULL;
        }
        if (set_long(stream, s_max_seq, sequence) < 0) {
            return NULL;
        }
        if (timestamp != last_timestamp && received > 1) {
            long long diff = (arrival - last_arrival) - (timestamp - last_timestamp);
            if (diff < 0) {
                diff = -diff;
            }
            /* Python's >> floors; so does gcc's on a negative long long. */
            if (set_long(stream, s_jitter_q4, jitter + diff - ((jitter + 8) >> 4)) < 0) {
                return NULL;
            }
        }
        if (set_long(stream, s_last_arrival, arrival) < 0
            || set_long(stream, s_last_stamp, timestamp) < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef native_functions[] = {
    {"opus_push", (PyCFunction)(void (*)(void))opus_push, METH_FASTCALL,
     "opus_push(packer, packet, packet_type): OpusRepacketizer.push(packet) on the "
     "repacketizer's attributes, as the fan-out does it; None (nothing done) if the Python "
     "method must take the packet."},
    {"stream_add", (PyCFunction)(void (*)(void))stream_add, METH_FASTCALL,
     "stream_add(stream, packet[, now]): aiortc's StreamStatistics.add(packet), in C."},
    {NULL, NULL, 0, NULL},
};

/* ---------------------------------------------------------------------------------------- */

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "webrtc_ext._native",
    .m_doc = "The per-packet work of the raw RTP path, in C (see webrtc_ext.native).",
    .m_size = -1,
    .m_methods = native_functions,
};

#define INTERN(variable, text)                                                                 \
    if ((variable = PyUnicode_InternFromString(text)) == NULL) {                               \
        return NULL;                                                                           \
    }

PyMODINIT_FUNC
PyInit__native(void)
{
    INTERN(s_state, "_state");
    INTERN(s_tx_srtp, "_tx_srtp");
    INTERN(s_rx_srtp, "_rx_srtp");
    INTERN(s_stages, "_stages");
    INTERN(s_selected, "selected");
    INTERN(s_socket, "_socket");
    INTERN(s_data, "data");
    INTERN(s_payload_start, "payload_start");
    INTERN(s_payload_end, "payload_end");
    INTERN(s_marker, "marker");
    INTERN(s_audio_level, "audio_level");
    INTERN(s_packet_count, "packet_count");
    INTERN(s_octet_count, "octet_count");
    INTERN(s_last_timestamp, "last_timestamp");
    INTERN(s_packets_sent, "packets_sent");
    INTERN(s_bytes_sent, "bytes_sent");
    INTERN(s_last_sent, "last_sent");
    INTERN(s_packets, "packets");
    INTERN(s_payload_bytes, "payload_bytes");
    INTERN(s_header_bytes, "header_bytes");
    INTERN(s_highest_sequence, "highest_sequence");
    INTERN(s_retransmitted_packets, "retransmitted_packets");
    INTERN(s_retransmitted_payload_bytes, "retransmitted_payload_bytes");
    INTERN(s_base_sequence, "base_sequence");
    INTERN(s_cycles, "cycles");
    INTERN(s_last_received, "last_received");
    INTERN(s_malformed, "malformed");
    INTERN(s_dict, "__dict__");
    INTERN(s_send_rtp_now, "send_rtp_now");
    INTERN(s_sent, "sent");
    INTERN(s_received, "received");
    INTERN(s_rtp_sent, "rtp_sent");
    INTERN(s_rtp_received, "rtp_received");
    INTERN(s_transport, "transport");
    INTERN(s_sendto, "sendto");
    INTERN(s_payload_type, "payload_type");
    INTERN(s_sequence_number, "sequence_number");
    INTERN(s_timestamp, "timestamp");
    INTERN(s_ssrc, "ssrc");
    INTERN(s_arrival_time, "arrival_time");
    INTERN(s_counters, "counters");
    INTERN(s_packets_received_ice, "packets_received");
    INTERN(s_bytes_received, "bytes_received");
    INTERN(s_rtp_router, "_rtp_router");
    INTERN(s_ssrc_table, "ssrc_table");
    INTERN(s_raw, "_raw");
    INTERN(s_enabled, "_enabled");
    INTERN(s_rtp_queues, "_rtp_queues");
    INTERN(s_interceptors, "interceptors");
    INTERN(s_audio_level_id, "_audio_level_id");
    INTERN(s_negotiated_codecs, "_negotiated_codecs");
    INTERN(s_stream_statistics, "_stream_statistics");
    INTERN(s_rtp_callbacks, "_rtp_callbacks");
    INTERN(s_deliver_raw, "_deliver_raw");
    INTERN(s_last_packet, "_last_packet");
    INTERN(s_clock_rates, "_clock_rates");
    INTERN(s_frames, "frames");
    INTERN(s_held, "_held");
    INTERN(s_toc, "_toc");
    INTERN(s_bytes, "_bytes");
    INTERN(s_sequence, "_sequence");
    INTERN(s_packets_in, "packets_in");
    INTERN(s_packets_out, "packets_out");
    INTERN(s_receiver, "receiver");
    INTERN(s_mime_type, "mimeType");
    INTERN(s_max_seq, "max_seq");
    INTERN(s_packets_received, "packets_received");
    INTERN(s_base_seq, "base_seq");
    INTERN(s_clockrate, "_clockrate");
    INTERN(s_jitter_q4, "_jitter_q4");
    INTERN(s_last_arrival, "_last_arrival");
    INTERN(s_last_stamp, "_last_timestamp");
    INTERN(s_add, "add");
    INTERN(s_segment_started, "_segment_started");
    INTERN(s_source, "_source");
    INTERN(s_segment_ssrc, "_segment_ssrc");
    INTERN(s_frame_ticks, "frame_ticks");
    INTERN(s_high_out_time, "_high_out_time");
    INTERN(s_dropped, "dropped");
    INTERN(munger_names[M_HIGH_IN_SEQ16], "_high_in_seq16");
    INTERN(munger_names[M_HIGH_IN_SEQ], "_high_in_seq");
    INTERN(munger_names[M_FIRST_IN_SEQ], "_first_in_seq");
    INTERN(munger_names[M_HIGH_IN_TS32], "_high_in_ts32");
    INTERN(munger_names[M_HIGH_IN_TS], "_high_in_ts");
    INTERN(munger_names[M_TS_OFFSET], "_ts_offset");
    INTERN(munger_names[M_SEGMENT_FLOOR_TS], "_segment_floor_ts");
    INTERN(munger_names[M_CLOCK_RATE], "clock_rate");
    INTERN(munger_names[M_SEQ_OFFSET], "_seq_offset");
    INTERN(munger_names[M_HIGH_OUT_SEQ], "_high_out_seq");
    INTERN(munger_names[M_HIGH_OUT_TS], "_high_out_ts");
    INTERN(s_native_targets, "_native_targets");
    INTERN(s_native, "_native");
    INTERN(s_media_held, "_media_held");
    INTERN(s_dtmf, "_dtmf");
    INTERN(s_player, "_player");
    INTERN(s_playing, "_playing");
    INTERN(s_munger, "_munger");
    INTERN(s_outbound, "_outbound");
    INTERN(s_packets_dropped, "packets_dropped");
    INTERN(s_send_rtp, "send_rtp");
    INTERN(s_forward_packed, "_forward_packed");
    INTERN(s_now, "now");
    INTERN(s_source_kw, "source");
    if ((kw_source_now = PyTuple_Pack(2, s_source_kw, s_now)) == NULL) {
        return NULL;
    }
    if (PyType_Ready(&SendPathType) < 0 || PyType_Ready(&RecvPathType) < 0
        || PyType_Ready(&FanOutType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&native_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&SendPathType);
    Py_INCREF(&RecvPathType);
    Py_INCREF(&FanOutType);
    if (PyModule_AddObject(module, "SendPath", (PyObject *)&SendPathType) < 0
        || PyModule_AddObject(module, "RecvPath", (PyObject *)&RecvPathType) < 0
        || PyModule_AddObject(module, "FanOut", (PyObject *)&FanOutType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
