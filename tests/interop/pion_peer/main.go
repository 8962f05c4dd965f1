// pion_peer is a third-party WebRTC peer for the interop tests: Pion answers (or offers) an
// audio call over loopback and sends silent Opus frames. Signalling is one JSON object per
// line: the session description in, the session description out, then event lines.
//
// Build offline against Debian's Pion (GOPATH mode, see tests/interop/pion.py).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media"
)

// A 20 ms CELT frame of silence (RFC 6716 TOC 0xf8: fullband, 20 ms, one frame).
var silentOpusFrame = []byte{0xf8, 0xff, 0xfe}

type message struct {
	Type   string `json:"type,omitempty"`
	SDP    string `json:"sdp,omitempty"`
	Event  string `json:"event,omitempty"`
	State  string `json:"state,omitempty"`
	Local  string `json:"local,omitempty"`
	Remote string `json:"remote,omitempty"`
}

var stdoutMu sync.Mutex

func emit(m message) {
	line, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	os.Stdout.Write(append(line, '\n'))
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "pion_peer: "+format+"\n", args...)
	os.Exit(1)
}

func settingEngine(networks string) webrtc.SettingEngine {
	s := webrtc.SettingEngine{}
	s.SetIncludeLoopbackCandidate(true)
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	var types []webrtc.NetworkType
	for _, name := range strings.Split(networks, ",") {
		switch name {
		case "udp4":
			types = append(types, webrtc.NetworkTypeUDP4)
		case "udp6":
			types = append(types, webrtc.NetworkTypeUDP6)
		default:
			fail("unknown network type %q", name)
		}
	}
	s.SetNetworkTypes(types)
	// Loopback only: the tests never send traffic anywhere else.
	s.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	s.SetIPFilter(func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback) })
	return s
}

func readDescription(in *bufio.Reader) webrtc.SessionDescription {
	line, err := in.ReadBytes('\n')
	if err != nil {
		fail("reading the session description: %v", err)
	}
	var m message
	if err := json.Unmarshal(line, &m); err != nil {
		fail("parsing the session description: %v", err)
	}
	var desc webrtc.SessionDescription
	switch m.Type {
	case "offer":
		desc = webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}
	case "answer":
		desc = webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}
	default:
		fail("unexpected description type %q", m.Type)
	}
	return desc
}

func writeLocalDescription(pc *webrtc.PeerConnection) {
	// No trickle: the description goes out with every candidate in it.
	<-webrtc.GatheringCompletePromise(pc)
	desc := pc.LocalDescription()
	emit(message{Type: desc.Type.String(), SDP: desc.SDP})
}

func sendSilence(track *webrtc.TrackLocalStaticSample, done <-chan struct{}) {
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-done:
			return
		case <-ticker.C:
			if err := track.WriteSample(media.Sample{Data: silentOpusFrame, Duration: 20 * time.Millisecond}); err != nil {
				fail("writing a sample: %v", err)
			}
		}
	}
}

func main() {
	role := flag.String("role", "answer", "answer (ICE controlled) or offer (ICE controlling)")
	networks := flag.String("networks", "udp4", "comma-separated network types: udp4,udp6")
	flag.Parse()

	mediaEngine := &webrtc.MediaEngine{}
	if err := mediaEngine.RegisterDefaultCodecs(); err != nil {
		fail("registering codecs: %v", err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(mediaEngine), webrtc.WithSettingEngine(settingEngine(*networks)))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		fail("creating the peer connection: %v", err)
	}
	defer pc.Close()

	track, err := webrtc.NewTrackLocalStaticSample(
		webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
		"audio", "pion",
	)
	if err != nil {
		fail("creating the track: %v", err)
	}
	if _, err := pc.AddTrack(track); err != nil {
		fail("adding the track: %v", err)
	}

	done := make(chan struct{})
	var closeOnce sync.Once
	pc.OnICEConnectionStateChange(func(state webrtc.ICEConnectionState) {
		emit(message{Event: "iceconnectionstatechange", State: state.String()})
		if state == webrtc.ICEConnectionStateConnected {
			if pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair(); err == nil && pair != nil {
				emit(message{Event: "selectedcandidatepair", Local: pair.Local.String(), Remote: pair.Remote.String()})
			}
		}
	})
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) {
		emit(message{Event: "connectionstatechange", State: state.String()})
		if state == webrtc.PeerConnectionStateFailed || state == webrtc.PeerConnectionStateClosed {
			closeOnce.Do(func() { close(done) })
		}
	})

	in := bufio.NewReader(os.Stdin)
	if *role == "offer" {
		offer, err := pc.CreateOffer(nil)
		if err != nil {
			fail("creating the offer: %v", err)
		}
		if err := pc.SetLocalDescription(offer); err != nil {
			fail("setting the offer: %v", err)
		}
		writeLocalDescription(pc)
		if err := pc.SetRemoteDescription(readDescription(in)); err != nil {
			fail("setting the answer: %v", err)
		}
	} else {
		if err := pc.SetRemoteDescription(readDescription(in)); err != nil {
			fail("setting the offer: %v", err)
		}
		answer, err := pc.CreateAnswer(nil)
		if err != nil {
			fail("creating the answer: %v", err)
		}
		if err := pc.SetLocalDescription(answer); err != nil {
			fail("setting the answer: %v", err)
		}
		writeLocalDescription(pc)
	}

	go sendSilence(track, done)
	// Run until the test closes our stdin (or the call fails).
	go func() {
		_, _ = in.ReadBytes('\n')
		closeOnce.Do(func() { close(done) })
	}()
	<-done
}
