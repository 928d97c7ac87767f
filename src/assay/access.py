"""Who may do what: organizations, teams, users, API tokens, roles and the audit log.

Organizations own teams (SigOpt's *clients*); users belong to teams through memberships, one
role each (``admin``/``write``/``read``); an organization's *owners* are admins of all its teams.
Every use case is one transaction.

Tokens are ``assay_`` + 43 URL-safe characters (256 random bits). Only their SHA-256 is
stored; the secret is shown once, when a token is created or rotated. Kinds:

* ``client``: a team's API token with a role: ``admin`` (manages tokens, reads the audit
  log), ``write`` (everything on the team's experiments and runs) or ``read``.
* ``development``: like a write token, but every suggestion it gets is random (SigOpt's
  development tokens: wire up code without spending the optimizer).
* ``share``: read-only, for one experiment or one training run, expiring (30 days by default).

A token may belong to a user (``user_id``): it then acts with the lower of its own role and the
user's role in the token's team (owners of the team's organization count as admins), and it
stops working when the user leaves the team.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from assay.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from assay.schemas import Strict, Text, parse
from assay.store import Store, orgs
from assay.store import access as repo

__all__ = ["Principal", "LOCAL", "Access", "TokenCreate", "TokenUpdate", "UserCreate", "UserUpdate",
           "MemberUpdate", "NameUpdate", "hash_token", "new_secret", "record", "ROLES"]

ROLES = ("admin", "write", "read")
_RANK = {"read": 0, "write": 1, "admin": 2}
TOKEN_PREFIX = "assay_"
SHARE_LIFETIME = 30 * 24 * 3600
MAX_LIFETIME = 10 * 365 * 24 * 3600


@dataclass(frozen=True)
class Principal:
    """The caller of one request. Without auth every caller is the admin of team 1."""

    client_id: int = 1
    role: str = "admin"  # "admin" | "write" | "read"
    development: bool = False
    token_id: int | None = None
    kind: str = "local"  # "local" (no auth) | "client" | "development" | "share"
    experiment_id: int | None = None
    training_run_id: int | None = None
    user_id: int | None = None
    name: str | None = None
    organization_id: int | None = None
    org_role: str | None = None  # "owner" (admin of every team of the organization) | "member" | None

    @property
    def owner(self) -> bool:
        """An owner of its team's organization (with an admin token): manages all its teams."""
        return self.org_role == "owner" and self.role == "admin" and self.kind != "share"

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        if self.token_id is None:
            return "local"
        label = f"token {self.token_id}"
        return f"{label} ({self.name})" if self.name else label


LOCAL = Principal(organization_id=1, org_role="owner")  # the caller when the server runs without tokens


class TokenCreate(Strict):
    name: Name | None = None
    role: Literal["admin", "write", "read"] = "write"
    development: bool = False
    experiment: str | int | None = None
    training_run: str | int | None = None
    user: str | int | None = None
    lifetime: int | None = Field(default=None, ge=60, le=MAX_LIFETIME, description="seconds until it expires")


class TokenUpdate(Strict):
    token: Literal["rotate"] | None = None
    expires: Literal["renew"] | None = None
    name: Name | None = None


Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class UserCreate(Strict):
    """Add a user to a team: a new user, or one of the organization's users by email."""

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: Name | None = None
    role: Literal["admin", "write", "read"] = "write"


class UserUpdate(Strict):
    name: Name | None = None


class MemberUpdate(Strict):
    role: Literal["admin", "write", "read"]


class NameUpdate(Strict):
    name: Text = Field(min_length=1)


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _now() -> int:
    return int(time.time())


def _id(value: Any, what: str) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise NotFound(f"{what} {value!r} does not exist", field=what) from None
    if not 0 < out < 2**62:
        raise NotFound(f"{what} {value!r} does not exist", field=what)
    return out


def token_json(t: dict[str, Any], secret: str | None = None) -> dict[str, Any]:
    """SigOpt's token object (plus assay's role/name/prefix); ``token`` is the secret, only once."""
    kind = t["kind"]
    return {
        "object": "token", "id": str(t["id"]), "token": secret,
        "token_type": {"client": "client-api", "development": "client-dev", "share": "guest"}.get(kind, kind),
        "kind": kind, "role": t["role"], "name": t["name"], "prefix": t["prefix"],
        "client": str(t["client_id"]), "user": None if t["user_id"] is None else str(t["user_id"]),
        "development": kind == "development",
        "experiment": None if t["experiment_id"] is None else str(t["experiment_id"]),
        "training_run": None if t["training_run_id"] is None else str(t["training_run_id"]),
        "all_experiments": kind != "share", "created": t["created"], "expires": t["expires"],
        "revoked": t["revoked"], "last_used": t["last_used"],
    }


def local_token_json(p: Principal) -> dict[str, Any]:
    """``GET /v1/tokens/self`` when the server runs without auth."""
    return {"object": "token", "id": None, "token": None, "token_type": "client-api", "kind": "local",
            "role": p.role, "name": None, "prefix": None, "client": str(p.client_id), "user": None,
            "development": p.development, "experiment": None, "training_run": None, "all_experiments": True,
            "created": None, "expires": None, "revoked": None, "last_used": None}


def record(session: Any, p: Principal | None, action: str, object_type: str, object_id: Any = None,
           details: dict[str, Any] | None = None, *, client_id: int | None = None) -> None:
    """Append to the audit log inside the caller's transaction."""
    p = p or Principal()
    repo.audit(session, client_id=p.client_id if client_id is None else client_id, now=_now(), actor=p.actor,
               action=action, object_type=object_type, object_id=object_id, token_id=p.token_id,
               user_id=p.user_id, details=details)


class _AuthCache:
    """Token lookups of this process, kept ``ttl`` seconds (the per-request database round trip is
    most of an authenticated request's cost otherwise).

    Any change to tokens, teams or memberships made through :class:`Access` in this process clears
    it when its transaction commits (and a lookup that raced with the change is not stored); a
    change made by another process (the CLI, another server process) takes effect within ``ttl``.
    Revocation, expiry and membership are re-checked on every hit against the cached row.
    """

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()
        self.generation = 0

    def get(self, key: tuple[str, str], ttl: float) -> tuple[bool, dict[str, Any] | None]:
        hit = self._rows.get(key)
        if hit is None or time.monotonic() - hit[0] > ttl:
            return False, None
        return True, hit[1]

    def put(self, key: tuple[str, str], row: dict[str, Any] | None, generation: int) -> None:
        with self._lock:
            if generation != self.generation:
                return  # a change committed while this row was read: it may be stale
            if len(self._rows) > 10_000:
                self._rows.clear()
            self._rows[key] = (time.monotonic(), row)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._rows.clear()


#: one per process: an Access that changes tokens invalidates every Access's lookups (same process)
AUTH_CACHE = _AuthCache()


class Access:
    """Token and team use cases over one :class:`~assay.store.Store`.

    ``cache_seconds``: how long a token lookup is reused (0: look the token up on every request).
    """

    def __init__(self, store: Store, *, cache_seconds: float = 0.0) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._touched: dict[int, float] = {}

    @contextlib.contextmanager
    def _write(self) -> Iterator[Any]:
        """A write transaction that may change who is allowed what: the token cache is cleared
        after it commits (or fails)."""
        try:
            with self.store.write() as s:
                yield s
        finally:
            AUTH_CACHE.clear()

    def _token(self, digest: str) -> dict[str, Any] | None:
        key = (self.store.url, digest)
        if self.cache_seconds > 0:
            hit, row = AUTH_CACHE.get(key, self.cache_seconds)
            if hit:
                return row
        generation = AUTH_CACHE.generation
        with self.store.read_connection() as conn:
            row = orgs.token_for_auth(conn, digest)
        if self.cache_seconds > 0:
            AUTH_CACHE.put(key, row, generation)
        return row

    def cached(self, secret: str | None) -> bool:
        """Whether :meth:`authenticate` can answer for ``secret`` without the database (no lookup,
        no ``last_used`` write due): then it may run on an event loop."""
        if not secret:
            return True
        if self.cache_seconds <= 0:
            return False
        hit, row = AUTH_CACHE.get((self.store.url, hash_token(secret)), self.cache_seconds)
        return hit and (row is None or _now() - self._touched.get(row["id"], 0) <= 60)

    # -- authentication ------------------------------------------------------------------
    def authenticate(self, secret: str | None) -> Principal:
        """The principal of a token secret; :class:`Unauthorized` if missing, unknown, revoked or expired."""
        if not secret:
            raise Unauthorized("an API token is required: send it as the HTTP Basic username or as "
                               "'Authorization: Bearer <token>'")
        digest = hash_token(secret)
        t = self._token(digest)
        if t is None or not hmac.compare_digest(t["token_hash"], digest):
            raise Unauthorized("the API token is not valid")
        now = _now()
        if t["revoked"] is not None:
            raise Unauthorized("the API token was revoked")
        if t["expires"] is not None and t["expires"] <= now:
            raise Unauthorized("the API token has expired; renew it with PUT /v1/tokens/{id} {\"expires\": \"renew\"}")
        role, org_role = t["role"], t["org_role"]
        if t["user_id"] is not None and t["kind"] != "share":
            member = "admin" if org_role == "owner" else t["member_role"]
            if member is None:
                raise Unauthorized("the API token's user is no longer a member of this team")
            role = min(role, member, key=_RANK.__getitem__)
        if now - self._touched.get(t["id"], 0) > 60:  # last_used, at most one write a minute per token
            self._touched[t["id"]] = now
            with self.store.write() as s:
                repo.update_token(s, t["id"], last_used=now)
        return Principal(client_id=t["client_id"], role=role, development=t["kind"] == "development",
                         token_id=t["id"], kind=t["kind"], experiment_id=t["experiment_id"],
                         training_run_id=t["training_run_id"], user_id=t["user_id"], name=t["name"],
                         organization_id=t["organization_id"], org_role=org_role)

    # -- tokens ----------------------------------------------------------------------------
    def _fields(self, client_id: int, kind: str, role: str, now: int, *, name: str | None = None,
                user_id: int | None = None, experiment_id: int | None = None, training_run_id: int | None = None,
                lifetime: int | None = None) -> tuple[dict[str, Any], str]:
        secret = new_secret()
        return dict(client_id=client_id, user_id=user_id, token_hash=hash_token(secret),
                    prefix=secret[:12], kind=kind, role=role, name=name, experiment_id=experiment_id,
                    training_run_id=training_run_id, created=now,
                    expires=now + lifetime if lifetime else None, lifetime=lifetime, revoked=None,
                    last_used=None), secret

    def create_token(self, body: Any, p: Principal, *, client_id: Any = None) -> dict[str, Any]:
        """A new token in the caller's team (or ``client_id``, which the caller must manage); the JSON
        carries the secret (shown only now)."""
        req = parse(TokenCreate, body)
        share = req.experiment is not None or req.training_run is not None
        if share:
            if p.role == "read":
                raise Forbidden("a read-only token cannot create tokens")
            if req.experiment is not None and req.training_run is not None:
                raise InvalidRequest("a share token is for one experiment or one training run", field="experiment")
            if req.role != "read" and "role" in req.model_fields_set:
                raise InvalidRequest("share tokens are read-only", field="role")
            if req.development:
                raise InvalidRequest("a share token cannot be a development token", field="development")
        now = _now()
        with self._write() as s:
            cid = p.client_id if client_id is None else self._team(s, client_id, p, manage=True)["id"]
            eid: int | None = None
            rid: int | None = None
            uid: int | None = None
            if req.experiment is not None:
                eid = _id(req.experiment, "experiment")
                if repo.experiment_client(s, eid) != cid:
                    raise NotFound(f"experiment {eid} does not exist", field="experiment")
            if req.training_run is not None:
                rid = _id(req.training_run, "training_run")
                if repo.training_run_client(s, rid) != cid:
                    raise NotFound(f"training run {rid} does not exist", field="training_run")
            if req.user is not None:
                uid = _id(req.user, "user")
                if orgs.membership_role(s, uid, cid) is None and not (
                        self._manages(s, cid, p) and _org_role(s, uid, cid) == "owner"):
                    raise NotFound(f"user {req.user} does not exist", field="user")
            if not share and not self._manages(s, cid, p) and not (uid is not None and uid == p.user_id):
                raise Forbidden("only an admin token can create team tokens (a user's token: tokens of that user)")
            lifetime: int | None
            if share:
                kind, role, lifetime = "share", "read", req.lifetime or SHARE_LIFETIME
            else:
                kind = "development" if req.development else "client"
                role = "write" if req.development and req.role == "admin" else req.role
                lifetime = req.lifetime
            fields, secret = self._fields(cid, kind, role, now, name=req.name, user_id=uid,
                                          experiment_id=eid, training_run_id=rid, lifetime=lifetime)
            t = repo.insert_token(s, **fields)
            record(s, p, "token.create", "token", t["id"], {"kind": kind, "role": role, "name": req.name,
                                                              "user": uid, "experiment": eid, "training_run": rid},
                   client_id=cid)
        return token_json(t, secret)

    def _target(self, token_id: Any, p: Principal) -> int:
        if token_id == "self":
            if p.token_id is None:
                raise NotFound("this server runs without tokens", field="token")
            return p.token_id
        tid = _id(token_id, "token")
        if tid != p.token_id and p.role != "admin":
            raise NotFound(f"token {token_id} does not exist", field="token")
        return tid

    def _token_row(self, s: Any, tid: int, p: Principal, *, lock: bool = False) -> dict[str, Any]:
        """A token of the caller's team, or (owners) of another team of the organization; else 404."""
        cid = repo.token_client(s, tid)
        if cid is None or (cid != p.client_id and not (p.owner and _org_of(s, cid) == p.organization_id)):
            raise NotFound(f"token {tid} does not exist", field="token")
        return repo.token_row(s, cid, tid, lock=lock)

    def get_token(self, token_id: Any, p: Principal) -> dict[str, Any]:
        if token_id == "self" and p.token_id is None:
            return local_token_json(p)
        tid = self._target(token_id, p)
        with self.store.read() as s:
            out = token_json(self._token_row(s, tid, p))
        if tid == p.token_id:
            out["role"] = p.role  # what it may do now (a user's token: capped by the user's role)
        return out

    def list_tokens(self, p: Principal, *, include_revoked: bool = False, client_id: Any = None
                    ) -> list[dict[str, Any]]:
        """The tokens of the caller's team (or of ``client_id``, which the caller must manage)."""
        with self.store.read() as s:
            cid = p.client_id if client_id is None else self._team(s, client_id, p, manage=True)["id"]
            if not self._manages(s, cid, p):
                raise Forbidden("only an admin token can list the team's tokens")
            return [token_json(t) for t in repo.list_tokens(s, cid, include_revoked=include_revoked)]

    def update_token(self, token_id: Any, body: Any, p: Principal) -> dict[str, Any]:
        """``{"token": "rotate"}``: a new secret (the old one stops working); ``{"expires": "renew"}``."""
        req = parse(TokenUpdate, body)
        tid = self._target(token_id, p)
        if p.kind == "share":
            raise Forbidden("a share token cannot change tokens")
        now = _now()
        secret = None
        with self._write() as s:
            t = self._token_row(s, tid, p, lock=True)
            if t["revoked"] is not None:
                raise InvalidRequest("the token was revoked", field="token")
            fields: dict[str, Any] = {}
            if req.token == "rotate":
                secret = new_secret()
                fields.update(token_hash=hash_token(secret), prefix=secret[:12])
            if req.expires == "renew":
                if t["lifetime"] is None:
                    raise InvalidRequest("this token does not expire", field="expires")
                fields["expires"] = now + t["lifetime"]
            if "name" in req.model_fields_set:
                fields["name"] = req.name
            if fields:
                repo.update_token(s, tid, **fields)
                record(s, p, "token.update", "token", tid,
                       {"rotated": secret is not None, "renewed": "expires" in fields}, client_id=t["client_id"])
            t = repo.token_row(s, t["client_id"], tid)
        return token_json(t, secret)

    def revoke_token(self, token_id: Any, p: Principal) -> None:
        tid = self._target(token_id, p)
        if p.kind == "share":
            raise Forbidden("a share token cannot revoke tokens")
        with self._write() as s:
            t = self._token_row(s, tid, p, lock=True)
            if t["revoked"] is None:
                repo.update_token(s, tid, revoked=_now())
                record(s, p, "token.revoke", "token", tid, client_id=t["client_id"])


    # -- who may see / manage a team ---------------------------------------------------------
    def _manages(self, s: Any, client_id: int, p: Principal) -> bool:
        """Admin of that team, or owner of its organization."""
        if p.kind == "share":
            return False
        if client_id == p.client_id and p.role == "admin":
            return True
        return p.owner and _org_of(s, client_id) == p.organization_id

    def _team(self, s: Any, client_id: Any, p: Principal, *, manage: bool = False) -> dict[str, Any]:
        """A team the caller may see (its own; an owner: every team of the organization), else 404;
        ``manage``: 403 unless the caller administers it."""
        cid = _id(client_id, "client")
        c = orgs.get_client(s, cid) if p.kind != "share" else None
        if c is None or not (cid == p.client_id or (p.owner and c["organization_id"] == p.organization_id)):
            raise NotFound(f"client {client_id} does not exist", field="client")
        if manage and not self._manages(s, cid, p):
            raise Forbidden("this needs an admin token of the team or an owner of its organization")
        return c

    def _organization(self, s: Any, org_id: Any, p: Principal, *, manage: bool = False) -> dict[str, Any]:
        oid = _id(org_id, "organization")
        o = orgs.get_organization(s, oid) if p.kind != "share" and oid == p.organization_id else None
        if o is None:
            raise NotFound(f"organization {org_id} does not exist", field="organization")
        if manage and not p.owner:
            raise Forbidden("this needs a token of an owner of the organization")
        return o

    def _user(self, s: Any, user_id: Any, p: Principal) -> dict[str, Any]:
        """A user the caller may see: itself, a member of the caller's team, or (owners) of its organization."""
        uid = _id(user_id, "user")
        u = orgs.user_by_id(s, uid) if p.kind != "share" else None
        visible = u is not None and (
            uid == p.user_id or orgs.membership_role(s, uid, p.client_id) is not None
            or (p.owner and p.organization_id is not None
                and orgs.organization_role(s, uid, p.organization_id) is not None))
        if not visible:
            raise NotFound(f"user {user_id} does not exist", field="user")
        assert u is not None
        return u

    # -- organizations (API) -----------------------------------------------------------------
    def get_organization(self, org_id: Any, p: Principal) -> dict[str, Any]:
        with self.store.read() as s:
            return _org_json(self._organization(s, org_id, p))

    def update_organization(self, org_id: Any, body: Any, p: Principal) -> dict[str, Any]:
        req = parse(NameUpdate, body)
        with self._write() as s:
            o = self._organization(s, org_id, p, manage=True)
            orgs.update_organization(s, o["id"], name=req.name)
            record(s, p, "organization.update", "organization", o["id"], {"name": req.name})
            return _org_json(orgs.get_organization(s, o["id"]) or o)

    def organization_clients(self, org_id: Any, p: Principal) -> list[dict[str, Any]]:
        """Owners: every team of the organization; anyone else: their own team."""
        with self.store.read() as s:
            o = self._organization(s, org_id, p)
            teams = orgs.organization_clients(s, o["id"])
        return [_client_json(c) for c in teams if p.owner or c["id"] == p.client_id]

    def create_organization_client(self, org_id: Any, body: Any, p: Principal) -> dict[str, Any]:
        """A new team in the organization (owners)."""
        req = parse(NameUpdate, body)
        with self._write() as s:
            o = self._organization(s, org_id, p, manage=True)
            c = orgs.create_client_in(s, o["id"], req.name, _now())
            record(s, p, "client.create", "client", c["id"], {"name": req.name, "organization": o["id"]})
            record(s, p, "client.create", "client", c["id"], {"name": req.name, "organization": o["id"]},
                   client_id=c["id"])
        return _client_json(c)

    def organization_memberships(self, org_id: Any, p: Principal) -> list[dict[str, Any]]:
        with self.store.read() as s:
            o = self._organization(s, org_id, p, manage=True)
            return [_membership_json(u, role, o) for u, role in orgs.organization_members(s, o["id"])]

    # -- teams and their users (API) ---------------------------------------------------------
    def get_client(self, client_id: Any, p: Principal) -> dict[str, Any]:
        with self.store.read() as s:
            return _client_json(self._team(s, client_id, p))

    def update_client(self, client_id: Any, body: Any, p: Principal) -> dict[str, Any]:
        req = parse(NameUpdate, body)
        with self._write() as s:
            c = self._team(s, client_id, p, manage=True)
            orgs.update_client(s, c["id"], name=req.name)
            record(s, p, "client.update", "client", c["id"], {"name": req.name}, client_id=c["id"])
            return _client_json({**c, "name": req.name})

    def list_users(self, client_id: Any, p: Principal) -> list[dict[str, Any]]:
        """The team's users with their role in it."""
        with self.store.read() as s:
            c = self._team(s, client_id, p)
            return [_user_json(u, c["id"], role) for u, role in orgs.team_members(s, c["id"])]

    def create_user(self, body: Any, p: Principal, client_id: Any = None) -> dict[str, Any]:
        """Add a user to a team: a new one, or an existing one (by email; a user may belong to teams of
        several organizations, each seeing only its own teams' roles)."""
        req = parse(UserCreate, body)
        now = _now()
        with self._write() as s:
            c = self._team(s, p.client_id if client_id is None else client_id, p, manage=True)
            u = self._add_member(s, c, req.email, req.name, req.role, now)
            record(s, p, "user.add", "user", u["id"], {"email": req.email, "role": req.role}, client_id=c["id"])
        return _user_json(u, c["id"], req.role)

    def _add_member(self, s: Any, c: dict[str, Any], email: str, name: str | None, role: str, now: int
                    ) -> dict[str, Any]:
        u = orgs.user_by_email(s, email)
        if u is None:
            if repo.user_email_exists(s, email):
                raise Conflict(f"the user with email {email!r} was deleted", field="email")
            u = repo.insert_user(s, c["id"], email, name, role, now)
        elif orgs.membership_role(s, u["id"], c["id"]) is not None:
            raise Conflict(f"{email!r} is already a member of this team; change the role with "
                           f"PUT /v1/clients/{c['id']}/users/{u['id']}", field="email")
        orgs.set_membership(s, u["id"], c["id"], role, now)
        if orgs.organization_role(s, u["id"], c["organization_id"]) is None:
            orgs.set_organization_member(s, u["id"], c["organization_id"], "member", now)
        return u

    def update_member(self, client_id: Any, user_id: Any, body: Any, p: Principal) -> dict[str, Any]:
        """Change a user's role in a team."""
        req = parse(MemberUpdate, body)
        with self._write() as s:
            c = self._team(s, client_id, p, manage=True)
            uid = _id(user_id, "user")
            u = orgs.user_by_id(s, uid)
            if u is None or orgs.membership_role(s, uid, c["id"]) is None:
                raise NotFound(f"user {user_id} does not exist", field="user")
            orgs.set_membership(s, uid, c["id"], req.role, _now())
            record(s, p, "user.role", "user", uid, {"role": req.role}, client_id=c["id"])
        return _user_json(u, c["id"], req.role)

    def remove_member(self, client_id: Any, user_id: Any, p: Principal) -> None:
        """Take a user out of a team; the user's tokens in that team are revoked."""
        with self._write() as s:
            c = self._team(s, client_id, p, manage=True)
            uid = _id(user_id, "user")
            if not orgs.delete_membership(s, uid, c["id"]):
                raise NotFound(f"user {user_id} does not exist", field="user")
            n = orgs.revoke_user_tokens(s, uid, c["id"], _now())
            record(s, p, "user.remove", "user", uid, {"tokens_revoked": n}, client_id=c["id"])

    # -- users (API) -------------------------------------------------------------------------
    def get_user(self, user_id: Any, p: Principal) -> dict[str, Any]:
        with self.store.read() as s:
            u = self._user(s, user_id, p)
            return _user_json(u, None, None)

    def update_user(self, user_id: Any, body: Any, p: Principal) -> dict[str, Any]:
        """Rename a user: the user itself, an admin of the caller's team it is in, or an owner."""
        req = parse(UserUpdate, body)
        with self._write() as s:
            u = self._user(s, user_id, p)
            admin = p.owner or (p.role == "admin" and p.kind != "share")
            # a user of several organizations is changed only by itself: no organization speaks for the others
            elsewhere = any(o["id"] != p.organization_id for o, _ in orgs.user_organizations(s, u["id"]))
            if u["id"] != p.user_id and (not admin or elsewhere):
                raise Forbidden("only the user, or an admin of its only organization, can change a user")
            if "name" in req.model_fields_set:
                orgs.update_user(s, u["id"], name=req.name)
                record(s, p, "user.update", "user", u["id"], {"name": req.name})
            return _user_json({**u, "name": req.name if "name" in req.model_fields_set else u["name"]}, None, None)

    def user_permissions(self, user_id: Any, p: Principal) -> list[dict[str, Any]]:
        """The user's teams and roles (those the caller may see)."""
        with self.store.read() as s:
            u = self._user(s, user_id, p)
            teams = orgs.user_teams(s, u["id"])
        mine = u["id"] == p.user_id
        return [{"object": "permission", "user": str(u["id"]), "client": _client_json(c), "role": role}
                for c, role in teams
                if mine or c["id"] == p.client_id or (p.owner and c["organization_id"] == p.organization_id)]

    def user_memberships(self, user_id: Any, p: Principal) -> list[dict[str, Any]]:
        """The user's organizations (owner or member)."""
        with self.store.read() as s:
            u = self._user(s, user_id, p)
            found = orgs.user_organizations(s, u["id"])
        mine = u["id"] == p.user_id
        return [_membership_json(u, role, o) for o, role in found if mine or o["id"] == p.organization_id]

    # -- audit log -----------------------------------------------------------------------------
    def audit_log(self, p: Principal, *, limit: int | None = None, before: Any = None,
                  client_id: Any = None, action: str | None = None, object_type: str | None = None,
                  object_id: str | None = None) -> dict[str, Any]:
        """Who changed what in a team, newest first: its admins, and owners of its organization.
        Filters: ``action`` (exact, or a prefix ending in ``.``), ``object_type``, ``object_id``."""
        for name, value in (("action", action), ("object_type", object_type), ("object_id", object_id)):
            if value is not None and not 0 < len(value) <= 100:
                raise InvalidRequest(f"{name} must be 1 to 100 characters", field=name)
        lim = 100 if limit is None else limit
        if not 0 <= lim <= 1000:
            raise InvalidRequest("limit must be between 0 and 1000", field="limit")
        b = None
        if before not in (None, ""):
            try:
                b = int(before)
            except (TypeError, ValueError):
                raise InvalidRequest("before must be a paging marker from a previous page", field="before") from None
        with self.store.read() as s:
            cid = p.client_id if client_id in (None, "") else self._team(s, client_id, p)["id"]
            if not self._manages(s, cid, p):
                raise Forbidden("only an admin token can read the audit log")
            items, total = repo.list_audit(s, cid, limit=lim, before=b, action=action, object_type=object_type,
                                           object_id=object_id)
        marker = items[-1]["id"] if items and len(items) == lim else None
        return {"object": "pagination", "count": total, "data": items, "paging": {"before": marker, "after": None}}

    # -- operator actions (the CLI, with direct database access) --------------------------------
    def bootstrap(self) -> str | None:
        """On a database without any token: an admin token for team 1 (returned once), else ``None``."""
        now = _now()
        with self._write() as s:
            if repo.count_tokens(s):
                return None
            from assay.store.repository import ensure_client

            ensure_client(s, 1)
            fields, secret = self._fields(1, "client", "admin", now, name="first admin token")
            t = repo.insert_token(s, **fields)
            record(s, LOCAL, "token.create", "token", t["id"], {"kind": "client", "role": "admin",
                                                                  "bootstrap": True})
        return secret

    def _operator(self, s: Any, client_id: int) -> Principal:
        """Whoever runs the CLI where the database is: an owner of the team's organization."""
        from assay.store.repository import ensure_client

        if client_id == 1:
            ensure_client(s, 1)  # the default team exists from the first start on
        c = orgs.get_client(s, client_id)
        if c is None:
            raise NotFound(f"client {client_id} does not exist", field="client")
        return Principal(client_id=client_id, organization_id=c["organization_id"], org_role="owner")

    def operator_create_token(self, client_id: int, *, role: str = "write", name: str | None = None,
                              development: bool = False, experiment: int | None = None,
                              training_run: int | None = None, lifetime: int | None = None,
                              user_email: str | None = None) -> dict[str, Any]:
        """A token for any team, made by whoever can open the database."""
        with self._write() as s:
            p = self._operator(s, client_id)
            user = None
            if user_email is not None:
                u = orgs.user_by_email(s, user_email)
                if u is None:
                    raise NotFound(f"no user with email {user_email!r}", field="user")
                user = u["id"]
        body: dict[str, Any] = {"role": role, "name": name, "development": development, "experiment": experiment,
                                "training_run": training_run, "lifetime": lifetime, "user": user}
        if (experiment is not None or training_run is not None) and role == "write":
            body.pop("role")
        return self.create_token({k: v for k, v in body.items() if v is not None or k == "name"}, p)

    def operator_list_tokens(self, client_id: int | None, include_revoked: bool = False) -> list[dict[str, Any]]:
        with self.store.read() as s:
            return [token_json(t) for t in repo.list_tokens(s, client_id, include_revoked=include_revoked)]

    def operator_revoke(self, token_id: int) -> bool:
        with self._write() as s:
            rows = [t for t in repo.list_tokens(s, None, include_revoked=True) if t["id"] == token_id]
            if not rows:
                return False
            if rows[0]["revoked"] is None:
                repo.update_token(s, token_id, revoked=_now())
                record(s, Principal(client_id=rows[0]["client_id"]), "token.revoke", "token", token_id)
            return True

    def create_organization(self, name: str) -> dict[str, Any]:
        with self._write() as s:
            from assay.store.repository import ensure_client

            ensure_client(s, 1)  # organization 1 and team 1 come first
            return _org_json(orgs.create_organization(s, name, _now()))

    def list_organizations(self) -> list[dict[str, Any]]:
        with self.store.read() as s:
            return [_org_json(o) for o in orgs.list_organizations(s)]

    def create_team(self, name: str, organization: int = 1, *, token: bool = True
                    ) -> tuple[int, dict[str, Any] | None]:
        """A new team in an organization, and (``token``) its first admin token."""
        from assay.store.repository import ensure_client

        with self._write() as s:
            ensure_client(s, 1)  # team 1 is the default team; new teams come after it
            if orgs.get_organization(s, organization) is None:
                raise NotFound(f"organization {organization} does not exist", field="organization")
            cid = orgs.create_client_in(s, organization, name, _now())["id"]
            record(s, LOCAL, "client.create", "client", cid, {"name": name, "organization": organization},
                   client_id=cid)
        return cid, self.operator_create_token(cid, role="admin", name="team admin") if token else None

    def list_teams(self, organization: int | None = None) -> list[dict[str, Any]]:
        with self.store.read() as s:
            teams = repo.list_clients(s)
        return [t for t in teams if organization is None or t["organization_id"] == organization]

    def operator_add_user(self, client_id: int, email: str, *, name: str | None = None, role: str = "write",
                          owner: bool = False) -> dict[str, Any]:
        """Add a user to a team (creating the user if new); ``owner``: also an owner of the organization."""
        req = parse(UserCreate, {"email": email, "name": name, "role": role})
        now = _now()
        with self._write() as s:
            p = self._operator(s, client_id)
            c = orgs.get_client(s, client_id)
            assert c is not None
            u = orgs.user_by_email(s, req.email)
            if u is None or orgs.membership_role(s, u["id"], client_id) is None:
                u = self._add_member(s, c, req.email, req.name, req.role, now)
            else:
                orgs.set_membership(s, u["id"], client_id, req.role, now)
            if owner:
                orgs.set_organization_member(s, u["id"], c["organization_id"], "owner", now)
            record(s, p, "user.add", "user", u["id"], {"email": req.email, "role": req.role, "owner": owner},
                   client_id=client_id)
        return _user_json(u, client_id, req.role)

    def operator_remove_user(self, client_id: int, email: str) -> bool:
        with self._write() as s:
            p = self._operator(s, client_id)
            u = orgs.user_by_email(s, email)
            if u is None or not orgs.delete_membership(s, u["id"], client_id):
                return False
            n = orgs.revoke_user_tokens(s, u["id"], client_id, _now())
            record(s, p, "user.remove", "user", u["id"], {"tokens_revoked": n}, client_id=client_id)
            return True

    def operator_list_users(self, client_id: int) -> list[dict[str, Any]]:
        with self.store.read() as s:
            return [_user_json(u, client_id, role) for u, role in orgs.team_members(s, client_id)]


def _org_of(s: Any, client_id: int) -> int | None:
    return orgs.client_organization(s, client_id)


def _org_role(s: Any, user_id: int, client_id: int) -> str | None:
    """The user's role in the organization that holds ``client_id`` (None without one)."""
    org = _org_of(s, client_id)
    return None if org is None else orgs.organization_role(s, user_id, org)


def _org_json(o: dict[str, Any]) -> dict[str, Any]:
    return {"object": "organization", "id": str(o["id"]), "name": o["name"], "created": o["created"]}


def _client_json(c: dict[str, Any]) -> dict[str, Any]:
    return {"object": "client", "id": str(c["id"]), "name": c["name"], "created": c["created"],
            "organization": str(c.get("organization_id") or 1)}


def _user_json(u: dict[str, Any], client_id: int | None, role: str | None) -> dict[str, Any]:
    """SigOpt's user object; ``client``/``role``: the team it is listed in and its role there."""
    return {"object": "user", "id": str(u["id"]), "email": u["email"], "name": u["name"], "created": u["created"],
            "client": None if client_id is None else str(client_id), "role": role}


def _membership_json(u: dict[str, Any], role: str, o: dict[str, Any]) -> dict[str, Any]:
    return {"object": "membership", "type": role, "user": _user_json(u, None, None), "organization": _org_json(o)}
