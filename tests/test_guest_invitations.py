"""``GET /api/guest-invitations``: a doctor or nurse sees where a colleague
invited them as a clinician guest (who invited them, the patient, their state),
not other people's invitations, not a visit that ended or one they were removed
from. Real node, Redis and Socket.IO clients."""

from __future__ import annotations

from typing import Any

from telemed.tokens import Role
from tests.authz_world import Connect, http
from tests.conftest import token
from tests.test_guests import CONSENT, Visit

COLLEAGUE = token(Role.NURSE, sub="n2", name="Nurse Kim Park")


async def invitations(node: str, who: str, status: int = 200) -> Any:
    got, data = await http("GET", f"{node}/api/guest-invitations", who)
    assert got == status, data
    return data


async def test_a_colleague_sees_the_invitation_and_its_state(node: str, connect: Connect) -> None:
    visit = await Visit(node, connect).start()
    colleague = await connect(node, COLLEAGUE, namespaces=["/queue", "/guest"])  # on the roster now
    assert await invitations(node, COLLEAGUE) == {"invitations": []}
    invited = await visit.invite({"kind": "clinician", "staff_sub": "n2"})
    [seen] = (await invitations(node, COLLEAGUE))["invitations"]
    assert seen | {"invited_at": 0} == {
        "visit_id": visit.id, "guest_id": invited["guest"]["guest_id"], "state": "invited",
        "invited_by_name": "Dr Ana Lee", "invited_at": 0, "patient_name": "Rosa Díaz",
        "visit_state": "in_visit", "doctor_name": "Dr Ana Lee",
    }
    await colleague.ok("/guest", "join", {"visit_id": visit.id, **CONSENT})
    assert [i["state"] for i in (await invitations(node, COLLEAGUE))["invitations"]] == ["waiting"]
    # Somebody else of the clinic has none; a patient's or a link guest's token may not ask.
    assert await invitations(node, token(Role.DOCTOR, sub="d9")) == {"invitations": []}
    _, _, guest_token = await visit.guest()
    assert (await invitations(node, guest_token, status=403))["error"]["code"] == "forbidden"
    await invitations(node, "", status=401)


async def test_a_removal_or_the_visits_end_takes_the_invitation_away(node: str, connect: Connect) -> None:
    visit = await Visit(node, connect).start()
    await connect(node, COLLEAGUE, namespaces=["/queue"])
    invited = await visit.invite({"kind": "clinician", "staff_sub": "n2"})
    await visit.act(invited["guest"]["guest_id"], "remove")
    assert await invitations(node, COLLEAGUE) == {"invitations": []}
    await visit.invite({"kind": "clinician", "staff_sub": "n2"})  # invited again
    assert len((await invitations(node, COLLEAGUE))["invitations"]) == 1
    await visit.doctor.ok("/queue", "end", {"visit_id": visit.id})
    assert await invitations(node, COLLEAGUE) == {"invitations": []}
