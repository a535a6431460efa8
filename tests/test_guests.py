"""A visit's guests (telemed/guests.py): invitation links, the lobby, consent,
admit and remove, what a guest may see, and the chart's participants. Real
node, real Redis, real Socket.IO clients."""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
import redis.asyncio as aioredis

from telemed import consent, keys
from telemed.chart import visit_folder
from telemed.settings import Settings
from telemed.tokens import Role
from tests.authz_world import CHECK_IN, Connect, assert_refused_by_namespace, http
from tests.conftest import SECRET, create_visit, token
from tests.peer import Peer, client_id

GUEST_NS = ["/guest", "/chat"]
CONSENT = {"consent_visit": True, "consent_recording": True}


def link_token(link: str) -> str:
    assert "/guest#t=" in link, link
    return link.split("#t=", 1)[1]


class Visit:
    """One visit of clinic c1, with its patient and its doctor (d1) once admitted."""

    def __init__(self, node: str, connect: Connect) -> None:
        self.node, self.connect = node, connect
        self.id = ""
        self.patient: Peer
        self.doctor: Peer

    async def start(self, *, admitted: bool = True) -> Visit:
        self.id, patient_token = await create_visit(self.node, token(Role.NURSE), patient_name="Rosa Díaz")
        self.patient = await self.connect(self.node, patient_token, namespaces=["/queue", "/chat"])
        await self.patient.ok("/queue", "check_in", {**CHECK_IN, "language": "es"})
        self.doctor = await self.connect(self.node, token(Role.DOCTOR, sub="d1", name="Dr Ana Lee"),
                                         namespaces=["/queue", "/chat"])
        if admitted:
            await self.doctor.ok("/queue", "admit", {"visit_id": self.id})
        return self

    async def invite(self, body: dict[str, Any], who: str | None = None, status: int = 201) -> dict[str, Any]:
        got, data = await http("POST", f"{self.node}/api/visits/{self.id}/guests",
                               who or token(Role.DOCTOR, sub="d1", name="Dr Ana Lee"), body)
        assert got == status, data
        return data

    async def act(self, guest_id: str, action: str, who: str | None = None, status: int = 200) -> dict[str, Any]:
        got, data = await http("POST", f"{self.node}/api/visits/{self.id}/guests/{guest_id}/{action}",
                               who or token(Role.DOCTOR, sub="d1", name="Dr Ana Lee"))
        assert got == status, data
        return data

    async def guest(self, body: dict[str, Any] | None = None, *, admit: bool = True) -> tuple[Peer, str, str]:
        """Invite an interpreter, open the link, consent (and be admitted): (peer, guest id, token)."""
        data = await self.invite(body or {"kind": "interpreter", "name": "Marta Ruiz", "language": "es"})
        tok = link_token(data["guest_link"])
        peer = await self.connect(self.node, tok, namespaces=["/guest"])
        gid = data["guest"]["guest_id"]
        await peer.ok("/guest", "join", {"visit_id": self.id, **CONSENT})
        if admit:
            await self.act(gid, "admit")
        return peer, gid, tok


async def test_an_interpreter_is_invited_consents_waits_and_is_let_in(node: str, connect: Connect, redis: aioredis.Redis) -> None:
    visit = await Visit(node, connect).start()
    data = await visit.invite({"kind": "interpreter", "name": "Marta Ruiz", "language": "ES"})
    assert data["guest"] | {"guest_id": "x", "invited_at": 0} == {
        "guest_id": "x", "kind": "interpreter", "name": "Marta Ruiz", "language": "es", "state": "invited",
        "direct_join": False, "invited_by_name": "Dr Ana Lee", "consent_visit": False, "consent_recording": False,
        "invited_at": 0, "joined_at": None, "left_at": None,
    }
    claims = jwt.decode(link_token(data["guest_link"]), SECRET.reveal(), algorithms=["HS256"])
    assert (claims["role"], claims["visit"], claims["guest"]) == ("guest", visit.id, data["guest"]["guest_id"])
    gid = data["guest"]["guest_id"]

    guest = await connect(node, link_token(data["guest_link"]), namespaces=["/guest"])
    welcome = await guest.wait_for("/guest", "guest")
    assert (welcome["state"], welcome["kind"], welcome["invited_by_name"]) == ("invited", "interpreter", "Dr Ana Lee")
    # Waiting: no chat, no participant list yet.
    refused = await guest.call("/guest", "participants", {"visit_id": visit.id})
    assert refused["error"]["code"] == "forbidden", refused
    reply = await guest.ok("/guest", "join", {"visit_id": visit.id, "consent_visit": True, "consent_recording": False})
    assert (reply["guest"]["state"], reply["guest"]["consent_recording"]) == ("waiting", False)
    await visit.doctor.wait_for("/queue", "guests", lambda g: g["guests"][0]["state"] == "waiting")
    stored = await redis.hgetall(keys.guest(visit.id, gid))
    assert (stored["consent_version"], stored["consent_language"]) == ("2026-11", "en")  # the guests' wording

    await visit.act(gid, "admit")
    await guest.wait_for("/guest", "guest", lambda g: g["state"] == "admitted")
    seen = await visit.patient.wait_for("/queue", "participants", lambda p: any(x["type"] == "guest" and x["state"] == "admitted" for x in p["participants"]))
    assert [(p["type"], p["kind"], p["name"], p["language"]) for p in seen["participants"]] == [
        ("patient", None, "Rosa Díaz", "es"), ("doctor", None, "Dr Ana Lee", None),
        ("guest", "interpreter", "Marta Ruiz", "es"),
    ]
    listed = await guest.ok("/guest", "participants", {"visit_id": visit.id})
    assert [p["type"] for p in listed["participants"]] == ["patient", "doctor", "guest"]

    # In the visit: chat with the patient and the doctor.
    chat = await connect(node, link_token(data["guest_link"]), namespaces=["/chat"])
    sent = await chat.ok("/chat", "send", {"visit_id": visit.id, "client_id": client_id(), "text": "Hola, soy la intérprete"})
    got = await visit.patient.wait_for("/chat", "message", lambda m: m["id"] == sent["id"])
    assert (got["role"], got["name"]) == ("guest", "Marta Ruiz")
    await visit.patient.ok("/chat", "send", {"visit_id": visit.id, "client_id": client_id(), "text": "gracias"})
    await chat.wait_for("/chat", "message", lambda m: m["text"] == "gracias")
    history = await chat.ok("/chat", "history", {"visit_id": visit.id})
    assert [m["text"] for m in history["messages"]][-2:] == ["Hola, soy la intérprete", "gracias"]

    # Leaves on their own: out of the list, may come back to the lobby.
    await guest.ok("/guest", "leave_visit", {"visit_id": visit.id})
    gone = await visit.doctor.wait_for("/queue", "guests", lambda g: g["guests"][0]["state"] == "left")
    assert gone["guests"][0]["left_at"] >= gone["guests"][0]["joined_at"]
    again = await guest.ok("/guest", "join", {"visit_id": visit.id, **CONSENT})
    assert again["guest"]["state"] == "waiting"


async def test_direct_join_skips_the_lobby(node: str, connect: Connect) -> None:
    visit = await Visit(node, connect).start()
    data = await visit.invite({"kind": "caregiver", "name": "Luis Díaz", "direct_join": True})
    guest = await connect(node, link_token(data["guest_link"]), namespaces=["/guest"])
    reply = await guest.ok("/guest", "join", {"visit_id": visit.id, **CONSENT})
    assert reply["guest"]["state"] == "admitted"
    chat = await connect(node, link_token(data["guest_link"]), namespaces=["/chat"])
    await chat.ok("/chat", "history", {"visit_id": visit.id})


async def test_a_link_of_another_visit_is_refused(node: str, connect: Connect) -> None:
    mine = await Visit(node, connect).start()
    guest, _, tok = await mine.guest()
    other_id, other_patient = await create_visit(node, token(Role.NURSE), patient_name="Other")
    patient = await connect(node, other_patient, namespaces=["/queue", "/chat"])
    await patient.ok("/queue", "check_in", CHECK_IN)
    await patient.ok("/chat", "send", {"visit_id": other_id, "client_id": client_id(), "text": "private"})
    for event, body in (("get_guest", {}), ("join", CONSENT), ("leave_visit", {}), ("participants", {})):
        reply = await guest.call("/guest", event, {"visit_id": other_id, **body})
        assert reply["error"]["code"] == "forbidden", (event, reply)
    chat = await connect(node, tok, namespaces=["/chat"])
    for event in ("history", "send"):
        body = {"visit_id": other_id} | ({"client_id": client_id(), "text": "hi"} if event == "send" else {})
        reply = await chat.call("/chat", event, body)
        assert reply["error"]["code"] == "forbidden", reply
    got, data = await http("GET", f"{node}/api/visits/{other_id}/participants", tok)
    assert got == 403, data
    # A token naming the other visit with this guest's id (minted with the secret) is not a guest there.
    forged = jwt.encode({**jwt.decode(tok, SECRET.reveal(), algorithms=["HS256"]), "visit": other_id},
                        SECRET.reveal(), algorithm="HS256")
    await assert_refused_by_namespace(node, {"token": forged}, ["/guest"], "forbidden")


async def test_a_guest_sees_nothing_of_the_clinic(node: str, connect: Connect) -> None:
    visit = await Visit(node, connect).start()
    _, _, tok = await visit.guest()
    # /call and /media take guests let in: tests/test_call_mesh.py, tests/test_guest_legs.py
    await assert_refused_by_namespace(node, {"token": tok}, ["/queue"], "forbidden")
    for path in (f"/api/visits/{visit.id}", "/api/clinics/c1/queue", f"/api/visits/{visit.id}/guests",
                 "/api/charts", "/api/clinics/c1/expected"):
        got, data = await http("GET", f"{node}{path}", tok)
        assert got == 403, (path, data)
    got, _ = await http("POST", f"{node}/api/visits/{visit.id}/guests", tok, {"kind": "caregiver", "name": "X"})
    assert got == 403


async def test_a_removed_guest_is_disconnected_and_their_link_refused(node: str, connect: Connect) -> None:
    visit = await Visit(node, connect).start()
    guest, gid, tok = await visit.guest()
    chat = await connect(node, tok, namespaces=["/chat"])
    dropped = [guest, chat]
    await visit.act(gid, "remove")
    for peer in dropped:
        await peer.wait_for(peer.namespaces[0], "error", lambda e: e["code"] == "unauthorized")
    await visit.doctor.wait_for("/queue", "guests", lambda g: g["guests"][0]["state"] == "removed")
    await assert_refused_by_namespace(node, {"token": tok}, ["/guest"], "unauthorized")
    await assert_refused_by_namespace(node, {"token": tok}, ["/chat"], "unauthorized")
    got, data = await http("GET", f"{node}/api/visits/{visit.id}/participants", tok)
    assert got == 401, data
    listed = await visit.patient.wait_for("/queue", "participants", lambda p: all(x["type"] != "guest" for x in p["participants"]) and len(p["participants"]) == 2)
    assert [x["type"] for x in listed["participants"]] == ["patient", "doctor"]
    await visit.act(gid, "remove", status=409)


async def test_sockets_of_a_removed_guest_close(node: str, connect: Connect) -> None:
    """Closed by the server (not only refused on their next event)."""
    visit = await Visit(node, connect).start()
    guest, gid, _ = await visit.guest()
    await visit.act(gid, "remove")
    await guest.wait_for("/guest", "error", lambda e: e["code"] == "unauthorized")
    for _ in range(100):
        if not guest.sio.connected:
            break
        await guest.sio.sleep(0.05)
    assert not guest.sio.connected


async def test_a_clinician_guest_joins_with_their_staff_token(node: str, connect: Connect) -> None:
    visit = await Visit(node, connect).start()
    colleague_token = token(Role.DOCTOR, sub="d2", name="Dr Ben Kim")
    colleague = await connect(node, colleague_token, namespaces=["/queue", "/guest"])  # on the roster now
    data = await visit.invite({"kind": "clinician", "staff_sub": "d2"})
    assert data["guest_link"] is None and (data["guest"]["name"], data["guest"]["kind"]) == ("Dr Ben Kim", "clinician")
    reply = await colleague.ok("/guest", "join", {"visit_id": visit.id, **CONSENT})
    assert reply["guest"]["state"] == "waiting"
    await visit.act(data["guest"]["guest_id"], "admit")
    listed = await colleague.ok("/guest", "participants", {"visit_id": visit.id})
    assert ("guest", "clinician", "Dr Ben Kim") in [(p["type"], p["kind"], p["name"]) for p in listed["participants"]]
    # Another doctor of the clinic, not invited, is no guest of the visit.
    stranger = await connect(node, token(Role.DOCTOR, sub="d3"), namespaces=["/guest"])
    reply = await stranger.call("/guest", "join", {"visit_id": visit.id, **CONSENT})
    assert reply["error"]["code"] == "forbidden"
    # Unknown staff, the same person twice: refused in words.
    await visit.invite({"kind": "clinician", "staff_sub": "nobody"}, status=404)
    await visit.invite({"kind": "clinician", "staff_sub": "d2"}, status=409)
    await visit.act(data["guest"]["guest_id"], "remove")
    reply = await colleague.call("/guest", "participants", {"visit_id": visit.id})
    assert reply["error"]["code"] == "forbidden"
    assert colleague.sio.connected  # their staff token stays good
    await colleague.ok("/queue", "get_queue")


async def test_the_link_dies_when_the_visit_ends(node: str, connect: Connect) -> None:
    visit = await Visit(node, connect).start()
    guest, _, tok = await visit.guest()
    await visit.doctor.ok("/queue", "end", {"visit_id": visit.id})
    reply = await guest.call("/guest", "get_guest", {"visit_id": visit.id})
    assert reply["error"]["code"] == "unauthorized" and "ended" in reply["error"]["message"], reply
    await assert_refused_by_namespace(node, {"token": tok}, ["/guest"], "unauthorized")
    await visit.invite({"kind": "caregiver", "name": "Late"}, status=409)


async def test_who_may_invite_admit_and_remove(node: str, connect: Connect) -> None:
    visit = await Visit(node, connect).start()
    body = {"kind": "caregiver", "name": "Luis Díaz"}
    for who, status in ((token(Role.NURSE, sub="n1"), 201), (token(Role.ADMIN, sub="a1"), 403),
                        (token(Role.DOCTOR, "c2", sub="d1"), 403), (visit.patient.token, 403), (None, 401)):
        got, data = await http("POST", f"{node}/api/visits/{visit.id}/guests", who, body)
        assert got == status, (who, data)
    guests = (await http("GET", f"{node}/api/visits/{visit.id}/guests", token(Role.NURSE, sub="n1")))[1]["guests"]
    gid = guests[0]["guest_id"]
    peer = await connect(node, link_token((await visit.invite(body))["guest_link"]), namespaces=["/guest"])
    second = (await http("GET", f"{node}/api/visits/{visit.id}/guests", token(Role.NURSE)))[1]["guests"][1]["guest_id"]
    await peer.ok("/guest", "join", {"visit_id": visit.id, **CONSENT})
    # Only the visit's doctor admits and removes once the visit runs.
    await visit.act(second, "admit", token(Role.DOCTOR, sub="d2"), status=403)
    await visit.act(second, "admit", token(Role.NURSE, sub="n1"), status=403)
    await visit.act(gid, "admit", status=409)  # never opened the link: not waiting
    await visit.act(second, "admit")
    await visit.act(second, "remove", token(Role.NURSE, sub="n1"), status=403)
    await visit.act("no-such-guest", "remove", status=404)


async def test_at_most_three_guests_and_checked_input(node: str, connect: Connect) -> None:
    visit = await Visit(node, connect).start()
    await visit.invite({"kind": "interpreter", "name": "I", "language": "zz-Latn-bad-tag!"}, status=400)
    await visit.invite({"kind": "interpreter", "name": "I"}, status=400)
    await visit.invite({"kind": "caregiver", "name": "C", "language": "es"}, status=400)
    await visit.invite({"kind": "caregiver"}, status=400)
    await visit.invite({"kind": "friend", "name": "F"}, status=400)
    first = await visit.invite({"kind": "interpreter", "name": "I", "language": "ko"})
    await visit.invite({"kind": "caregiver", "name": "C1"})
    await visit.invite({"kind": "caregiver", "name": "C2"})
    full = await visit.invite({"kind": "caregiver", "name": "C3"}, status=409)
    assert full["error"]["details"]["reason"] == "guests_full"
    await visit.act(first["guest"]["guest_id"], "remove")
    await visit.invite({"kind": "caregiver", "name": "C3"})
    # Consent: the visit is required; an unknown wording is refused as a patient's is.
    data = await visit.invite({"kind": "caregiver", "name": "C4"}, status=409)
    assert data["error"]["details"]["reason"] == "guests_full"


async def test_a_guest_consent_must_be_given_in_a_known_wording(node: str, connect: Connect) -> None:
    visit = await Visit(node, connect).start()
    data = await visit.invite({"kind": "caregiver", "name": "C"})
    guest = await connect(node, link_token(data["guest_link"]), namespaces=["/guest"])
    refused = await guest.call("/guest", "join", {"visit_id": visit.id, "consent_visit": False, "consent_recording": True})
    assert refused["error"]["code"] == "bad_request"
    outdated = await guest.call("/guest", "join", {"visit_id": visit.id, **CONSENT, "consent_version": "1999-01"})
    assert outdated["error"]["code"] == "consent_outdated"
    ok = await guest.ok("/guest", "join", {"visit_id": visit.id, **CONSENT, "language": "ko"})
    assert ok["guest"]["consent_recording"] is True


async def test_guests_before_the_doctor_has_the_visit(node: str, connect: Connect) -> None:
    """A nurse may invite while the patient waits; guests are let in once the doctor has the visit."""
    visit = await Visit(node, connect).start(admitted=False)
    nurse = token(Role.NURSE, sub="n1")
    data = await visit.invite({"kind": "interpreter", "name": "Marta", "language": "es"}, who=nurse)
    guest = await connect(node, link_token(data["guest_link"]), namespaces=["/guest"])
    await guest.ok("/guest", "join", {"visit_id": visit.id, **CONSENT})
    gid = data["guest"]["guest_id"]
    reply = await visit.act(gid, "admit", status=409)
    assert "started" in reply["error"]["message"]
    await visit.doctor.ok("/queue", "admit", {"visit_id": visit.id})
    await visit.act(gid, "admit")


async def test_the_chart_lists_every_participant(node: str, connect: Connect, settings: Settings) -> None:
    visit = await Visit(node, connect).start()
    interpreter, _, _ = await visit.guest()
    invited = await visit.invite({"kind": "caregiver", "name": "Luis Díaz"})
    caregiver = await connect(node, link_token(invited["guest_link"]), namespaces=["/guest"])
    await caregiver.ok("/guest", "join", {"visit_id": visit.id, "consent_visit": True, "consent_recording": False})
    await caregiver.ok("/guest", "leave_visit", {"visit_id": visit.id})
    await visit.doctor.ok("/queue", "end", {"visit_id": visit.id})
    folder = visit_folder(settings.recordings_dir, "c1", visit.id)
    for _ in range(400):  # the node writes the chart at the end: wait for its sealed export
        if (folder / "fhir.json").exists():
            break
        await interpreter.sio.sleep(0.05)
    record = json.loads((folder / "visit.json").read_text())
    people = {(p["role"], p.get("kind")): p for p in record["participants"]}
    assert set(people) >= {("patient", None), ("doctor", None), ("guest", "interpreter"), ("guest", "caregiver")}
    marta = people[("guest", "interpreter")]
    assert (marta["name"], marta["language"], marta["type"]) == ("Marta Ruiz", "es", "guest")
    assert marta["consent"]["visit"] is True and marta["consent"]["recording"] is True
    assert marta["consent"]["version"] == "2026-11" and marta["consent"]["sha256"] == consent.GUEST_WORDINGS[("en", "2026-11")]
    assert marta["time_in"] is not None and marta["time_out"] == record["times"]["ended"]
    luis = people[("guest", "caregiver")]
    assert luis["time_in"] is None and luis["time_out"] is None and luis["state"] == "left"
    assert luis["consent"]["recording"] is False
    patient = people[("patient", None)]
    assert patient["consent"]["visit"] is True and patient["time_in"] == record["times"]["admitted"]
    assert people[("doctor", None)]["consent"] is None and people[("doctor", None)]["type"] == "staff"

    # FHIR: every participant on the Encounter (the interpreter a TRANSLATOR), a Consent pair per person who answered.
    bundle = json.loads((folder / "fhir.json").read_text())
    resources = [e["resource"] for e in bundle["entry"]]
    encounter = next(r for r in resources if r["resourceType"] == "Encounter")
    kinds = {(p["individual"].get("display"), p["type"][0]["coding"][0]["code"], p["individual"]["type"])
             for p in encounter["participant"]}
    assert {("Dr Ana Lee", "PPRF", "Practitioner"), ("Marta Ruiz", "TRANSLATOR", "Practitioner"),
            ("Luis Díaz", "PART", "RelatedPerson")} <= kinds
    translator = next(p for p in encounter["participant"] if p["type"][0]["coding"][0]["code"] == "TRANSLATOR")
    assert translator["type"][0]["coding"][0]["system"] == "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
    assert "start" in translator["period"] and "end" in translator["period"]
    consents = [r for r in resources if r["resourceType"] == "Consent"]
    by = sorted((c.get("performer", [{}])[0].get("display", "patient"), c["scope"]["coding"][0]["code"], c["status"])
                for c in consents)
    assert by == [
        ("Luis Díaz", "patient-privacy", "rejected"), ("Luis Díaz", "treatment", "active"),
        ("Marta Ruiz", "patient-privacy", "active"), ("Marta Ruiz", "treatment", "active"),
        ("patient", "patient-privacy", "active"), ("patient", "treatment", "active"),
    ]


@pytest.mark.parametrize("kind", ["interpreter", "caregiver"])
async def test_a_guest_token_needs_its_guest_id(kind: str) -> None:
    from telemed.exceptions import BadRequest
    from telemed.tokens import mint, verify

    with pytest.raises(BadRequest):
        mint(SECRET, role=Role.GUEST, name=kind, clinic="c1", visit="v1", ttl=60)
    with pytest.raises(BadRequest):
        mint(SECRET, role=Role.NURSE, name=kind, clinic="c1", guest="g1", ttl=60)
    tok, claims = mint(SECRET, role=Role.GUEST, name=kind, clinic="c1", visit="v1", guest="g1", ttl=60)
    assert verify(SECRET, tok) == claims and claims.guest == "g1" and not claims.role.is_staff
