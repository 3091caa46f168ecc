"""A small OpenID Connect provider of the tests' own, on 127.0.0.1: discovery, an authorization endpoint
that signs the test's person in at once, a token endpoint that checks the client's secret and the PKCE
verifier exactly as RFC 6749 and RFC 7636 say, and its key set. A test can make the next ``id_token``
wrong in one way (``next_claims``, ``sign_with_another_key``) to see the console refuse it."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, Header, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse

from tests.support.responses import serve


@dataclass
class Person:
    email: str
    name: str = "Ada Lovelace"
    sub: str = field(default_factory=lambda: "sub-" + secrets.token_hex(6))
    email_verified: bool = True


@dataclass
class Provider:
    url: str = ""
    client_id: str = "closeloop-console"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    person: Person | None = None
    next_claims: dict[str, Any] = field(default_factory=dict)
    sign_with_another_key: bool = False
    token_requests: list[dict[str, str]] = field(default_factory=list)
    key: Any = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    other_key: Any = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    codes: dict[str, dict[str, str]] = field(default_factory=dict)

    def id_token(self, grant: dict[str, str]) -> str:
        assert self.person is not None
        now = int(time.time())
        claims = {
            "iss": self.url,
            "sub": self.person.sub,
            "aud": self.client_id,
            "exp": now + 300,
            "iat": now,
            "nonce": grant["nonce"],
            "email": self.person.email,
            "email_verified": self.person.email_verified,
            "name": self.person.name,
            **self.next_claims,
        }
        key = self.other_key if self.sign_with_another_key else self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "code_challenge_methods_supported": ["S256"],
            }

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            return {"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}

        @app.get("/authorize")
        async def authorize(request: Request) -> RedirectResponse:
            q = request.query_params
            if q.get("response_type") != "code" or q.get("client_id") != self.client_id:
                raise HTTPException(400, "unsupported_response_type or unknown client")
            if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
                raise HTTPException(400, "PKCE with S256 is required")
            if "openid" not in (q.get("scope") or "").split():
                raise HTTPException(400, "scope must include openid")
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "challenge": q["code_challenge"],
                "nonce": q["nonce"],
                "redirect_uri": q["redirect_uri"],
            }
            return RedirectResponse(
                f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", status_code=302
            )

        @app.post("/token")
        async def token(
            grant_type: str = Form(),
            code: str = Form(),
            redirect_uri: str = Form(),
            code_verifier: str = Form(),
            authorization: str = Header(""),
        ) -> JSONResponse:
            self.token_requests.append({"grant_type": grant_type, "authorization": authorization})
            scheme, _, encoded = authorization.partition(" ")
            user, _, password = base64.b64decode(encoded or "").decode().partition(":")
            if scheme != "Basic" or (unquote(user), unquote(password)) != (
                self.client_id,
                self.client_secret,
            ):
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            grant = self.codes.pop(code, None)
            if grant_type != "authorization_code" or grant is None or grant["redirect_uri"] != redirect_uri:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=")
            if challenge.decode() != grant["challenge"]:
                return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, status_code=400)
            return JSONResponse(
                {
                    "access_token": secrets.token_urlsafe(16),
                    "token_type": "Bearer",
                    "id_token": self.id_token(grant),
                }
            )

        return app


@asynccontextmanager
async def oidc_provider() -> AsyncIterator[Provider]:
    provider = Provider()
    async with serve(provider.app()) as url:
        provider.url = url
        yield provider
