"""Who may do what: teams, API tokens, roles and the audit log (use cases, one transaction each).

Tokens are ``assay_`` + 43 URL-safe characters (256 random bits). Only their SHA-256 is
stored; the secret is shown once, when a token is created or rotated. Kinds:

* ``client``: a team's API token with a role: ``admin`` (manages tokens, reads the audit
  log), ``write`` (everything on the team's experiments and runs) or ``read``.
* ``development``: like a write token, but every suggestion it gets is random (SigOpt's
  development tokens: wire up code without spending the optimizer).
* ``share``: read-only, for one experiment or one training run, expiring (30 days by default).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from assay.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from assay.schemas import Strict, Text, parse
from assay.store import Store
from assay.store import access as repo

__all__ = ["Principal", "Access", "TokenCreate", "TokenUpdate", "UserCreate", "hash_token", "new_secret",
           "record", "ROLES"]

ROLES = ("admin", "write", "read")
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

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        if self.token_id is None:
            return "local"
        label = f"token {self.token_id}"
        return f"{label} ({self.name})" if self.name else label


class TokenCreate(Strict):
    name: Text | None = None
    role: Literal["admin", "write", "read"] = "write"
    development: bool = False
    experiment: str | int | None = None
    training_run: str | int | None = None
    user: str | int | None = None
    lifetime: int | None = Field(default=None, ge=60, le=MAX_LIFETIME, description="seconds until it expires")


class TokenUpdate(Strict):
    token: Literal["rotate"] | None = None
    expires: Literal["renew"] | None = None
    name: Text | None = None


class UserCreate(Strict):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: Text | None = None
    role: Literal["admin", "write", "read"] = "write"


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


class Access:
    """Token and team use cases over one :class:`~assay.store.Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._touched: dict[int, float] = {}

    # -- authentication ------------------------------------------------------------------
    def authenticate(self, secret: str | None) -> Principal:
        """The principal of a token secret; :class:`Unauthorized` if missing, unknown, revoked or expired."""
        if not secret:
            raise Unauthorized("an API token is required: send it as the HTTP Basic username or as "
                               "'Authorization: Bearer <token>'")
        digest = hash_token(secret)
        with self.store.read() as s:
            found = repo.token_by_hash(s, digest)
        if found is None or not hmac.compare_digest(found[1], digest):
            raise Unauthorized("the API token is not valid")
        t = found[0]
        now = _now()
        if t["revoked"] is not None:
            raise Unauthorized("the API token was revoked")
        if t["expires"] is not None and t["expires"] <= now:
            raise Unauthorized("the API token has expired; renew it with PUT /v1/tokens/{id} {\"expires\": \"renew\"}")
        if now - self._touched.get(t["id"], 0) > 60:  # last_used, at most one write a minute per token
            self._touched[t["id"]] = now
            with self.store.write() as s:
                repo.update_token(s, t["id"], last_used=now)
        return Principal(client_id=t["client_id"], role=t["role"], development=t["kind"] == "development",
                         token_id=t["id"], kind=t["kind"], experiment_id=t["experiment_id"],
                         training_run_id=t["training_run_id"], user_id=t["user_id"], name=t["name"])

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

    def create_token(self, body: Any, p: Principal) -> dict[str, Any]:
        """A new token in the caller's team; the JSON carries the secret (shown only now)."""
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
        elif p.role != "admin":
            raise Forbidden("only an admin token can create team tokens")
        now = _now()
        with self.store.write() as s:
            eid = rid = uid = None
            if req.experiment is not None:
                eid = _id(req.experiment, "experiment")
                if repo.experiment_client(s, eid) != p.client_id:
                    raise NotFound(f"experiment {eid} does not exist", field="experiment")
            if req.training_run is not None:
                rid = _id(req.training_run, "training_run")
                if repo.training_run_client(s, rid) != p.client_id:
                    raise NotFound(f"training run {rid} does not exist", field="training_run")
            if req.user is not None:
                uid = repo.user_row(s, p.client_id, _id(req.user, "user"))["id"]
            if share:
                kind, role, lifetime = "share", "read", req.lifetime or SHARE_LIFETIME
            else:
                kind = "development" if req.development else "client"
                role = "write" if req.development and req.role == "admin" else req.role
                lifetime = req.lifetime
            fields, secret = self._fields(p.client_id, kind, role, now, name=req.name, user_id=uid,
                                          experiment_id=eid, training_run_id=rid, lifetime=lifetime)
            t = repo.insert_token(s, **fields)
            record(s, p, "token.create", "token", t["id"], {"kind": kind, "role": role, "name": req.name,
                                                              "experiment": eid, "training_run": rid})
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

    def get_token(self, token_id: Any, p: Principal) -> dict[str, Any]:
        if token_id == "self" and p.token_id is None:
            return local_token_json(p)
        tid = self._target(token_id, p)
        with self.store.read() as s:
            return token_json(repo.token_row(s, p.client_id, tid))

    def list_tokens(self, p: Principal, *, include_revoked: bool = False) -> list[dict[str, Any]]:
        if p.role != "admin":
            raise Forbidden("only an admin token can list the team's tokens")
        with self.store.read() as s:
            return [token_json(t) for t in repo.list_tokens(s, p.client_id, include_revoked=include_revoked)]

    def update_token(self, token_id: Any, body: Any, p: Principal) -> dict[str, Any]:
        """``{"token": "rotate"}``: a new secret (the old one stops working); ``{"expires": "renew"}``."""
        req = parse(TokenUpdate, body)
        tid = self._target(token_id, p)
        if p.kind == "share":
            raise Forbidden("a share token cannot change tokens")
        now = _now()
        secret = None
        with self.store.write() as s:
            t = repo.token_row(s, p.client_id, tid, lock=True)
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
                       {"rotated": secret is not None, "renewed": "expires" in fields})
            t = repo.token_row(s, p.client_id, tid)
        return token_json(t, secret)

    def revoke_token(self, token_id: Any, p: Principal) -> None:
        tid = self._target(token_id, p)
        if p.kind == "share":
            raise Forbidden("a share token cannot revoke tokens")
        with self.store.write() as s:
            t = repo.token_row(s, p.client_id, tid, lock=True)
            if t["revoked"] is None:
                repo.update_token(s, tid, revoked=_now())
                record(s, p, "token.revoke", "token", tid)

    # -- operator actions (the CLI, with direct database access) --------------------------------
    def bootstrap(self) -> str | None:
        """On a database without any token: an admin token for team 1 (returned once), else ``None``."""
        now = _now()
        with self.store.write() as s:
            if repo.count_tokens(s):
                return None
            from assay.store.repository import ensure_client

            ensure_client(s, 1)
            fields, secret = self._fields(1, "client", "admin", now, name="first admin token")
            t = repo.insert_token(s, **fields)
            record(s, Principal(), "token.create", "token", t["id"], {"kind": "client", "role": "admin",
                                                                       "bootstrap": True})
        return secret

    def operator_create_token(self, client_id: int, *, role: str = "write", name: str | None = None,
                              development: bool = False, experiment: int | None = None,
                              lifetime: int | None = None) -> dict[str, Any]:
        """A token for any team, made by whoever can open the database."""
        from assay.store.repository import ensure_client

        with self.store.write() as s:
            if client_id == 1:
                ensure_client(s, 1)  # the default team exists from the first start on
            repo.get_client(s, client_id)
        body: dict[str, Any] = {"role": role, "name": name, "development": development, "experiment": experiment,
                                "lifetime": lifetime}
        if experiment is not None and role == "write":
            body.pop("role")
        return self.create_token({k: v for k, v in body.items() if v is not None or k == "name"},
                                 Principal(client_id=client_id))

    def operator_list_tokens(self, client_id: int | None, include_revoked: bool = False) -> list[dict[str, Any]]:
        with self.store.read() as s:
            return [token_json(t) for t in repo.list_tokens(s, client_id, include_revoked=include_revoked)]

    def operator_revoke(self, token_id: int) -> bool:
        with self.store.write() as s:
            rows = [t for t in repo.list_tokens(s, None, include_revoked=True) if t["id"] == token_id]
            if not rows:
                return False
            if rows[0]["revoked"] is None:
                repo.update_token(s, token_id, revoked=_now())
                record(s, Principal(client_id=rows[0]["client_id"]), "token.revoke", "token", token_id)
            return True

    def create_team(self, name: str) -> tuple[int, dict[str, Any]]:
        """A new team and its first admin token."""
        from assay.store.repository import ensure_client

        with self.store.write() as s:
            ensure_client(s, 1)  # team 1 is the default team; new teams come after it
            cid = repo.create_client(s, name, _now())
            record(s, Principal(client_id=cid), "client.create", "client", cid, {"name": name})
        return cid, self.operator_create_token(cid, role="admin", name="team admin")

    def list_teams(self) -> list[dict[str, Any]]:
        with self.store.read() as s:
            return repo.list_clients(s)

    # -- teams, users, audit through the API -------------------------------------------------
    def get_client(self, client_id: Any, p: Principal) -> dict[str, Any]:
        cid = _id(client_id, "client")
        if cid != p.client_id or p.kind == "share":
            raise NotFound(f"client {client_id} does not exist", field="client")
        with self.store.read() as s:
            c = repo.get_client(s, cid)
        return {"object": "client", "id": str(c["id"]), "name": c["name"], "created": c["created"]}

    def create_user(self, body: Any, p: Principal) -> dict[str, Any]:
        req = parse(UserCreate, body)
        if p.role != "admin":
            raise Forbidden("only an admin token can add users")
        with self.store.write() as s:
            if repo.user_email_exists(s, req.email):
                from assay.errors import Conflict

                raise Conflict(f"a user with email {req.email!r} exists", field="email")
            u = repo.insert_user(s, p.client_id, req.email, req.name, req.role, _now())
            record(s, p, "user.create", "user", u["id"], {"email": req.email, "role": req.role})
        return _user_json(u)

    def list_users(self, p: Principal) -> list[dict[str, Any]]:
        if p.kind == "share":
            raise NotFound("not found")
        with self.store.read() as s:
            return [_user_json(u) for u in repo.list_users(s, p.client_id)]

    def audit_log(self, p: Principal, *, limit: int | None = None, before: Any = None) -> dict[str, Any]:
        if p.role != "admin":
            raise Forbidden("only an admin token can read the audit log")
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
            items, total = repo.list_audit(s, p.client_id, limit=lim, before=b)
        marker = items[-1]["id"] if items and len(items) == lim else None
        return {"object": "pagination", "count": total, "data": items, "paging": {"before": marker, "after": None}}


def _user_json(u: dict[str, Any]) -> dict[str, Any]:
    return {"object": "user", "id": str(u["id"]), "client": str(u["client_id"]), "email": u["email"],
            "name": u["name"], "role": u["role"], "created": u["created"]}
