"""The FHIR export's fixed tables: code systems, identifier systems, and the
maps from the chart's values to FHIR codes. fhir.resources checks shapes, not
code values, so every code the export uses comes from here.
"""

from __future__ import annotations

from telemed.visits import State

# -- code systems and identifier systems ----------------------------------------

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_PRIORITY = "http://terminology.hl7.org/CodeSystem/v3-ActPriority"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
MEDIA_TYPE = "http://terminology.hl7.org/CodeSystem/media-type"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
LOINC = "http://loinc.org"

#: Identifier systems of the things telemed names. Chat message and chart file
#: values are ``<visit>/<id>``: a stream id or file name is unique in one visit only.
VISIT_SYSTEM = "urn:telemed:visit"
SUBJECT_SYSTEM = "urn:telemed:subject"
CLINIC_SYSTEM = "urn:telemed:clinic"
CHAT_SYSTEM = "urn:telemed:chat-message"
FILE_SYSTEM = "urn:telemed:chart-file"
CONSENT_POLICY = "urn:telemed:consent-policy:"

#: Extensions of our own: the file's SHA-256 (hex) on an Attachment, and why the
#: visit ended on the Encounter (R4 has no element for either).
SHA256_EXTENSION = "urn:telemed:fhir:attachment-sha256"
END_REASON_EXTENSION = "urn:telemed:fhir:end-reason"

#: ESI level -> Encounter.priority (v3-ActPriority code, display). ESI 1 needs a
#: life-saving intervention now (emergency); 2 (high risk) and 3 (stable, needs
#: several resources; "urgent" in common ESI usage) call for prompt action; 4
#: and 5 wait their turn. The level itself is in the ESI Observation.
ESI_PRIORITY: dict[int, tuple[str, str]] = {
    1: ("EM", "emergency"),
    2: ("UR", "urgent"),
    3: ("UR", "urgent"),
    4: ("R", "routine"),
    5: ("R", "routine"),
}

#: LOINC 75636-1 "Emergency severity index [ESI]" and its answer list LL3056-0.
ESI_CODE = ("75636-1", "Emergency severity index [ESI]")
ESI_ANSWERS: dict[int, tuple[str, str]] = {
    1: ("LA21567-5", "Requires immediate life-saving intervention"),
    2: ("LA21752-3", "High risk or confused/lethargic/disoriented or severe pain/distress"),
    3: ("LA21753-1", "Needs 2 or more resources"),
    4: ("LA21754-9", "Needs 1 resource"),
    5: ("LA21755-6", "Needs no resources"),
}

#: Visit state -> Encounter status while it lasts (``ended`` is ``finished`` or
#: ``cancelled``, see :func:`_final_status`).
ENCOUNTER_STATUS: dict[str, str] = {
    State.CREATED: "planned",
    State.WAITING: "arrived",
    State.IN_TRIAGE: "triaged",
    State.READY: "triaged",
    State.IN_VISIT: "in-progress",
}

#: Recording state in ``recordings.json`` -> Media status.
#: A telemed appointment is a time, not a slot; FHIR's Appointment wants an end
#: with its start, so the bundle gives it this length (the default visit length).
APPOINTMENT_MINUTES = 15

RECORDING_STATUS = {"recording": "in-progress", "complete": "completed", "interrupted": "stopped"}

#: Token role -> resource type of its references, and the Encounter participant type of staff.
RESOURCE_OF_ROLE = {"patient": "Patient", "nurse": "Practitioner", "doctor": "Practitioner", "admin": "Practitioner",
                    "guest": "RelatedPerson"}
PARTICIPANT_TYPE = {
    "doctor": ("PPRF", "primary performer"),
    "nurse": ("SPRF", "secondary performer"),
    "admin": ("PART", "Participation"),
}

#: A guest's kind (telemed/guests.py) -> their resource and Encounter participant
#: type (v3-ParticipationType): an interpreter is a translator (a Practitioner: the
#: clinic engaged them), a caregiver a RelatedPerson taking part, a clinician guest
#: a consultant (a Practitioner of the clinic, keeping their staff role's sub).
GUEST_RESOURCE = {"interpreter": "Practitioner", "caregiver": "RelatedPerson", "clinician": "Practitioner"}
GUEST_PARTICIPANT_TYPE = {
    "interpreter": ("TRANSLATOR", "Translator"),
    "caregiver": ("PART", "Participation"),
    "clinician": ("CON", "consultant"),
}
