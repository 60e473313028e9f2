"""``no-secret-residue`` on fabricated sweeps (the sweep itself: tests/test_residue.py)."""

from runbook_lib.catalog import FAIL, PASS, SKIP, WARN, Verdict
from runbook_lib.catalog.no_secret_residue import judge
from runbook_lib.residue import Sweep, VersionResidue


def version(number, migrated=(), findings=(), aliases=(), snapshot=False):
    return VersionResidue(str(number), f"arn:fn:{number}", migrated=list(migrated), findings=list(findings),
                          aliases=list(aliases), snapshot=snapshot)


def test_no_version_holding_a_value_passes():
    verdict = judge(Sweep("fn", versions=[version(1), version(2)]))
    assert (verdict.status, verdict.reason) == (PASS, "2 published version(s) swept: none holds a migrated value or "
                                                      "a secret")


def test_only_the_snapshot_holding_values_warns():
    sweep = Sweep("fn", versions=[version(1), version(2, ["DB_PASSWORD"], snapshot=True)], snapshot_version="2")
    verdict = judge(sweep)
    assert (verdict.status, verdict.reason) == (WARN, "only the backout snapshot (version 2) holds the old values "
                                                      "(DB_PASSWORD): expected until close-out deletes it")


def test_another_version_holding_values_fails_naming_it_and_its_alias():
    sweep = Sweep("fn", versions=[version(1, ["DB_PASSWORD"], [{"variable": "TOKEN"}], aliases=["live"]),
                                  version(3, ["DB_PASSWORD"], snapshot=True)], snapshot_version="3")
    verdict = judge(sweep)
    assert verdict.status == FAIL
    assert verdict.reason == ("1 published version(s) besides the backout snapshot hold secret values: version 1: "
                              "DB_PASSWORD, TOKEN (alias live); delete them (close-out)")


def test_an_unreadable_version_fails():
    verdict = judge(Sweep("fn", versions=[version(1)], errors=["environment of fn:1 not readable: KMS"]))
    assert (verdict.status, verdict.reason) == (FAIL, "could not read every version: environment of fn:1 not "
                                                      "readable: KMS")


def test_no_sweep_skips_or_fails_with_why():
    assert (judge(None).status, judge(None).reason) == (SKIP, "no function to sweep")
    verdict = judge(None, "could not be evaluated: ListVersionsByFunction denied")
    assert (verdict.status, verdict.reason) == (FAIL, "could not be evaluated: ListVersionsByFunction denied")


# -- whole verdicts: the evidence is the sweep itself ------------------------------------------------
def test_whole_verdicts_carry_the_sweep():
    clean = Sweep("fn", versions=[version(1)])
    assert judge(clean) == Verdict(PASS, "1 published version(s) swept: none holds a migrated value or a secret",
                                   clean.to_dict())
    snapshot = Sweep("fn", versions=[version(2, ["DB_PASSWORD"], [{"variable": "TOKEN"}], snapshot=True)],
                     snapshot_version="2")
    assert judge(snapshot) == Verdict(WARN, "only the backout snapshot (version 2) holds the old values (DB_PASSWORD, "
                                            "TOKEN): expected until close-out deletes it", snapshot.to_dict())
    two = Sweep("fn", versions=[version(1, ["A"], aliases=["live", "beta"]), version(4, ["B"])])
    assert judge(two) == Verdict(FAIL, "2 published version(s) besides the backout snapshot hold secret values: "
                                       "version 1: A (alias live, beta); version 4: B; delete them (close-out)",
                                 two.to_dict())
    broken = Sweep("fn", versions=[version(1)], errors=["a: denied", "b: KMS"])
    assert judge(broken) == Verdict(FAIL, "could not read every version: a: denied; b: KMS", broken.to_dict())
    assert judge(None) == Verdict(SKIP, "no function to sweep")
