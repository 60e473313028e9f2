"""Service control policies: the organisation's ceiling on what a member account's principals may do.

AWS evaluates the SCPs on the path from the organisation's root, through each
organisational unit, to the account: at every level some attached SCP must allow the action,
and an explicit ``Deny`` at any level wins. They bind every principal of a member account
(even where a resource-based policy grants access) and never the management account.
:func:`scp_levels` reads that path from moto's Organizations backend.
"""

from __future__ import annotations

from .policy_language import Policy
from .resources import load_document

SCP_TYPE = "SERVICE_CONTROL_POLICY"


def scp_levels(account_id: str) -> list[list[Policy]] | None:
    """The SCPs attached to each level from the account up to the root (``None``: the account
    is not a member account of an organisation, so no SCP applies)."""
    from moto.organizations.models import organizations_backends

    for by_partition in list(organizations_backends.values()):
        backend = by_partition.get("aws") if hasattr(by_partition, "get") else None
        org = getattr(backend, "org", None)
        if org is None or account_id == org.master_account_id:
            continue
        account = next((a for a in backend.accounts if a.id == account_id), None)
        if account is None:
            continue
        levels = [_scps(account.attached_policies, f"account {account_id}")]
        node_id, seen = account.parent_id, set()
        while node_id and node_id not in seen:
            seen.add(node_id)
            node = next((ou for ou in backend.ou if ou.id == node_id), None)
            if node is None:
                break
            levels.append(_scps(node.attached_policies, f"{node.type.lower().replace('_', ' ')} {node_id}"))
            node_id = None if node.type == "ROOT" else getattr(node, "parent_id", None)
        return levels
    return None


def _scps(policies, where: str) -> list[Policy]:
    return [Policy(f"the service control policy {p.name} on {where}", load_document(p.content or "{}"))
            for p in policies if getattr(p, "type", "") == SCP_TYPE]
