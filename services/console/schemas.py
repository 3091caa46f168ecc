"""The console's JSON API bodies (never the ORM models)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from shared.access import Role


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=200, description="What the key is for, e.g. 'HubSpot sync'.")
    role: Role = Field(description="What the key may do: admin, analyst, agent, viewer or integration.")
    expires_at: datetime | None = Field(None, description="When the key stops working; none: never.")


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key_id: str
    prefix: str = Field(description="clk_<workspace>.<key id>: identifies the key; not a secret.")
    role: Role
    label: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="To the minute; none: never used.")
    revoked_at: datetime | None


class CreatedKeyOut(KeyOut):
    secret: str = Field(description="The whole key. Shown this once: it is stored nowhere.")


class InvitationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    role: Role


class InvitationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    role: Role
    expires_at: datetime


class MemberOut(BaseModel):
    user_id: str
    email: str
    name: str
    role: Role
    joined_at: datetime


class MeOut(BaseModel):
    workspace_id: str
    role: Role
    kind: Literal["key", "user"]
    id: str
    name: str
    permissions: list[str]


class UserTokenOut(BaseModel):
    token: str = Field(description="Send it as 'Authorization: Bearer <token>' to any service.")
    token_type: Literal["Bearer"] = "Bearer"
    expires_at: datetime
    workspace_id: str
    role: Role


class SsoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(min_length=8, max_length=500, description="The provider's issuer URL (https).")
    client_id: str = Field(min_length=1, max_length=500)
    client_secret: str | None = Field(
        None,
        max_length=2000,
        description="Kept when omitted; empty removes it (public clients use PKCE only).",
    )
    allowed_domains: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Email domains whose verified addresses join on first sign-in (just-in-time).",
    )
    default_role: Role = Field(Role.VIEWER, description="The role people who join that way get.")


class SsoOut(BaseModel):
    issuer: str
    client_id: str
    has_client_secret: bool
    allowed_domains: list[str]
    default_role: Role
    redirect_uri: str = Field(description="Register this at the provider as the redirect URI.")
    sign_in_url: str = Field(description="Where people of this workspace start a single sign-on.")


class WorkspaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="2-63 lowercase letters, digits, dashes."
    )
    name: str | None = Field(None, max_length=200)
    owner_email: EmailStr
    owner_name: str | None = Field(None, max_length=200)
    owner_sign_in: Literal["link", "password"] = Field(
        "link", description="link: a one-time link that sets the password; password: a generated one."
    )


class WorkspaceOut(BaseModel):
    workspace_id: str
    created: bool = Field(
        description="False when the workspace existed: only a new key and sign-in were made."
    )
    owner_email: str
    owner_created: bool
    sign_in_url: str | None
    password: str | None
    console_url: str
    api_key: CreatedKeyOut
