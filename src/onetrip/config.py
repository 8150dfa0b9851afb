"""One validated settings object (STYLE 8). Every setting reads from an ``ONETRIP_`` environment variable."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-secret-change-me-0123456789abcdef"


class Environment(StrEnum):
    development = "development"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONETRIP_", env_file=".env", extra="ignore")

    env: Environment = Environment.development
    database_url: str = "sqlite:///./onetrip.db"
    secret_key: str = DEV_SECRET
    # Access tokens are short-lived; the web session also has an idle timeout (等保 2.0, RULES §10).
    access_token_minutes: int = Field(default=30, ge=1, le=24 * 60)
    jwt_issuer: str = "onetrip"
    base_url: str = "http://127.0.0.1:8000"
    default_locale: str = "zh_CN"
    log_sql: bool = False
    # PostgreSQL connections each process keeps (None: 2 per CPU core this process may use, see
    # db.session.default_pool_size). A request that finds them all busy waits up to db_pool_timeout
    # seconds for one, then gets a 503 with Retry-After.
    db_pool_size: int | None = Field(default=None, ge=1, le=500)
    db_pool_timeout: float = Field(default=30.0, gt=0, le=600)
    # Request body limits in bytes, per route class (api/limits.py): a FHIR Bundle (transaction/batch), any other
    # FHIR request, the REST API (/api, /auth, /cds-services), and everything else (web forms). A larger body is
    # refused with 413 before it is read. Settings rather than rule values (``onetrip rules set``): the limit is
    # checked in a middleware for every request, before routing and before any database session exists, so it must
    # not read the rules table; and changing it is a deployment decision (proxy buffers, memory), not a clinical one.
    max_body_bundle: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_body_fhir: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_body_api: int = Field(default=1024 * 1024, ge=1024)
    max_body_form: int = Field(default=1024 * 1024, ge=1024)
    # The audit trail's keys, held outside the database (issue 26; docs/security.md "Audit trail"): each row's hash is
    # HMAC-SHA256 under the active key. ``audit_keys`` "kid:base64secret,kid2:..." (secrets of at least 32 bytes) and/or
    # ``audit_key_file`` (one "kid:base64secret" per line); ``audit_key_id`` the active key (default: the last one
    # given; older keys stay for verifying). Neither set: in development a key file is generated under the data
    # directory (with a warning); in production writing audit rows is refused. Signed chain-head checkpoints go to
    # ``audit_checkpoint_dir`` (append-only JSON lines), every ``audit_checkpoint_minutes`` with
    # `onetrip audit checkpoint --every`.
    audit_keys: SecretStr | None = None
    audit_key_id: str | None = None
    audit_key_file: Path | None = None
    audit_checkpoint_dir: Path | None = None
    audit_checkpoint_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # HL7 v2 MLLP listener limits (interop/hl7v2/mllp.py, issue 26): open connections per listener and per client
    # address, seconds without a byte before a connection is closed, seconds a started frame may take to finish,
    # and the largest frame (a larger one is answered AR, or the connection closed when its MSH cannot be read).
    # Frame memory is bounded by max_connections × max_frame_bytes. Settings for the same reasons as the body limits.
    mllp_max_connections: int = Field(default=64, ge=1, le=100_000)
    mllp_max_per_address: int = Field(default=8, ge=1, le=100_000)
    mllp_idle_seconds: float = Field(default=300.0, gt=0, le=7 * 24 * 3600)
    mllp_frame_seconds: float = Field(default=60.0, gt=0, le=24 * 3600)
    mllp_max_frame_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        weak = self.secret_key == DEV_SECRET or len(self.secret_key) < 32
        if self.env == Environment.production and weak:
            raise ValueError(
                "ONETRIP_SECRET_KEY must be set to a random value of at least 32 characters in production "
                "(生产环境必须设置至少32位的随机 ONETRIP_SECRET_KEY)"
            )
        if self.env == Environment.production and self.audit_keys is None and self.audit_key_file is None:
            # refuse to start rather than answer every audited request with an error (audit/keys.py)
            raise ValueError(
                "ONETRIP_AUDIT_KEYS or ONETRIP_AUDIT_KEY_FILE must be set in production: the audit trail's key lives "
                "outside the database; make one with `onetrip audit rotate-key` "
                "(生产环境必须设置审计密钥 ONETRIP_AUDIT_KEYS 或 ONETRIP_AUDIT_KEY_FILE)"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
