"""``/chat``: triage chat between a patient and the clinic's nurses and doctors."""

from __future__ import annotations

from typing import Any

from signaling import rooms
from signaling._base import AuthedNamespace, event
from signaling.hub import Hub
from signaling.schemas import ChatHistory, ChatSend
from telemed.chat import HISTORY_PAGE
from telemed.tokens import Claims, Role

#: Admins manage a clinic; they do not take part in a patient's chat. Guests
#: (telemed/guests.py) chat in their own visit once the doctor let them in.
CHATTERS = frozenset({Role.PATIENT, Role.NURSE, Role.DOCTOR, Role.GUEST})


class ChatNamespace(AuthedNamespace):
    roles = CHATTERS

    def __init__(self, hub: Hub) -> None:
        super().__init__("/chat", hub)

    async def joined(self, sid: str, claims: Claims) -> None:
        if claims.role.visit_bound:
            assert claims.visit is not None
            await self.hub.authorize_visit(claims, claims.visit, CHATTERS)  # a guest: let in by the doctor
            await self.enter_room(sid, rooms.patient(claims.visit))
        else:
            await self.enter_room(sid, rooms.staff(claims.clinic))

    @event(ChatSend, CHATTERS)
    async def on_send(self, sid: str, claims: Claims, p: ChatSend) -> dict[str, Any]:
        clinic = await self.hub.authorize_visit(claims, p.visit_id, CHATTERS)
        message, duplicate = await self.hub.chat.send(p.visit_id, claims, p.client_id, p.text)
        if not duplicate:
            self.hub.metrics.chat_messages.inc()
            self.hub.charts.chat_sent(message, clinic)
            body = message.to_dict()
            await self.emit("message", body, room=rooms.patient(p.visit_id))
            await self.emit("message", body, room=rooms.staff(clinic))
        return {"id": message.id, "ts": message.ts, "duplicate": duplicate}

    @event(ChatHistory, CHATTERS)
    async def on_history(self, sid: str, claims: Claims, p: ChatHistory) -> dict[str, Any]:
        await self.hub.authorize_visit(claims, p.visit_id, CHATTERS)
        messages = await self.hub.chat.history(p.visit_id, p.after)
        return {"messages": [m.to_dict() for m in messages], "more": len(messages) == HISTORY_PAGE}
