"""Browser sessions and failed-login throttling, for a server with a token.

Sessions: /login trades the token for a random session id (the cookie); the server keeps
only its SHA-256, with its expiry, in DATA_DIR/sessions.json (mode 0600, written atomically),
so sessions survive a restart. POST /logout ends the session on the server (a copied cookie
stops working), and starting the server with another token ends every session: the file
records a keyed hash of the token it was written under.

Guesses: wrong tokens (on /login, in a bearer or Basic header, or in ?token=) are counted per
client address; past MAX_FAILURES in WINDOW seconds, that address gets 429 with Retry-After
until its oldest counted failure is WINDOW seconds old."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path

SESSION_DAYS = 30
MAX_SESSIONS = 1000  # the oldest are dropped past this
MAX_FAILURES = int(os.environ.get("NODEFLOW_LOGIN_FAILURES", "10") or 10)
WINDOW = 60.0  # seconds
MAX_ADDRESSES = 10_000  # addresses tracked at once (the oldest forgotten)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


class Sessions:
    def __init__(self, path: Path, token: str):
        self.path = path
        self.token_mark = hmac.new(token.encode(), b"nodeflow sessions", "sha256").hexdigest()
        self._lock = threading.Lock()
        self._live: dict[str, float] | None = None  # sha256(id) -> expiry (epoch seconds)

    def _load(self) -> dict[str, float]:
        if self._live is None:
            live: dict[str, float] = {}
            try:
                data = json.loads(self.path.read_text())
                if isinstance(data, dict) and hmac.compare_digest(str(data.get("token", "")), self.token_mark):
                    live = {str(k): float(v) for k, v in dict(data.get("sessions", {})).items()}
            except (OSError, ValueError, TypeError, AttributeError):
                pass  # none yet, or unreadable: no sessions (everyone logs in again)
            now = time.time()
            self._live = {k: v for k, v in live.items() if v > now}
        return self._live

    def _save(self) -> None:
        from ..cache import atomic_write

        data = json.dumps({"token": self.token_mark, "sessions": self._live}).encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            old = os.umask(0o077)
            try:
                atomic_write(self.path, data)
            finally:
                os.umask(old)
        except OSError:
            pass  # sessions still hold in memory until the restart

    def create(self) -> str:
        session = secrets.token_urlsafe(32)
        with self._lock:
            live = self._load()
            live[_digest(session)] = time.time() + SESSION_DAYS * 86400
            while len(live) > MAX_SESSIONS:
                live.pop(min(live, key=live.__getitem__))
            self._save()
        return session

    def valid(self, session: str | None) -> bool:
        if not session or len(session) > 200:
            return False
        with self._lock:
            expiry = self._load().get(_digest(session))
        return expiry is not None and expiry > time.time()

    def end(self, session: str | None) -> bool:
        if not session:
            return False
        with self._lock:
            gone = self._load().pop(_digest(session), None) is not None
            if gone:
                self._save()
        return gone

    def count(self) -> int:
        with self._lock:
            return len(self._load())


class Guesses:
    """Failed token guesses per client address."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW):
        self.max_failures = max_failures
        self.window = window
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> int:
        """Seconds the address must wait before its next try (0: it may try now)."""
        now = time.monotonic()
        with self._lock:
            times = self._failures.get(address)
            if not times:
                return 0
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) < self.max_failures:
                return 0
            return max(1, int(times[0] + self.window - now + 0.999))

    def failed(self, address: str) -> None:
        with self._lock:
            times = self._failures.pop(address, None) or deque(maxlen=self.max_failures)
            times.append(time.monotonic())
            self._failures[address] = times
            while len(self._failures) > MAX_ADDRESSES:
                self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)


def client_address(scope: dict) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
