"""Who is acting: a user, a system client, or the local operator at the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field

from onetrip.kit.scopes import Scope, parse_scopes


@dataclass(frozen=True)
class Principal:
    kind: str  # user | client | cli
    id: str
    name: str
    organization_id: str | None
    roles: frozenset[str] = frozenset()
    scopes: tuple[Scope, ...] = ()
    session_id: str | None = None
    client_id: str | None = None
    network_address: str | None = None
    source: str = "api"
    raw_scope: str = field(default="", compare=False)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_operator(self) -> bool:
        """May read across institutions (audited like everyone else): the deployment's admin, a system
        client holding a ``system/*`` scope for the resource, or the local CLI operator."""
        return self.is_admin or self.kind == "cli" or (
            self.kind == "client" and any(s.context == "system" for s in self.scopes)
        )

    def with_source(self, source: str, address: str | None = None) -> Principal:
        from dataclasses import replace

        return replace(self, source=source, network_address=address or self.network_address)


def cli_principal(name: str = "cli") -> Principal:
    return Principal(kind="cli", id="cli", name=name, organization_id=None, roles=frozenset({"admin"}),
                     scopes=parse_scopes("system/*.cruds"), source="cli", raw_scope="system/*.cruds")
