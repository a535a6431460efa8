// The deployment's ICE transport policy (TELEMED_ICE_POLICY): "all", or
// "relay" (every call and chart leg through the TURN servers). The server
// hands it with the ICE servers (`ice_servers` on the /call socket's connect,
// the admit reply); every peer connection this page makes (the call, the
// chart leg) is configured with it.

let policy = "all";

/** Remember the policy of an `ice_servers` payload (a payload without one changes nothing). */
export function learnIcePolicy(payload) {
  const p = payload && payload.ice_transport_policy;
  if (p === "all" || p === "relay") policy = p;
}

/** The RTCConfiguration of a peer connection with these ICE servers. */
export function rtcConfiguration(iceServers) {
  return { iceServers: iceServers || [], iceTransportPolicy: policy };
}
