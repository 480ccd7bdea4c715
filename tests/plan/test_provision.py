"""Provisioning in the pure planner and in the gate's rule over the filesystem's label."""

from __future__ import annotations

import pytest

from reconciler.core.provisioning import LABEL_DONE, LABEL_NEW, label_try, run_argv, tried_attempt
from reconciler.core.safety import provision_verdict
from reconciler.model.desired import DesiredProvision, DesiredVm
from reconciler.model.observed import DomainState, Signature
from reconciler.names import UnsafeNameError
from reconciler.plan.diff import plan_node
from tests.plan.factories import converged, empty_observed, make_node, make_vm


def provisioned_vm(**kwargs: object) -> DesiredVm:
    vm = make_vm(100, **kwargs)  # type: ignore[arg-type]
    assert vm.filesystem is not None
    wanted = DesiredProvision(vm=vm.name, device=vm.filesystem.device, image="/srv/images/busybox.tar", attempt=2,
                              timeout_s=600)
    return vm.model_copy(update={"provision": wanted,
                                 "filesystem": vm.filesystem.model_copy(update={"label": LABEL_NEW})})


def test_provisioning_runs_after_the_filesystem_and_before_the_domain_starts() -> None:
    plan = plan_node(make_node(provisioned_vm()), empty_observed())
    order = [a.kind for a in plan.actions]
    assert order.index("make-fs") < order.index("provision-fs") < order.index("start-domain")
    fs = next(a for a in plan.actions if a.kind == "make-fs")
    assert fs.argvs == (("mkfs.xfs", "-L", "rprov-new", "/dev/drbd0"),)
    filled = next(a for a in plan.actions if a.kind == "provision-fs")
    start = next(a for a in plan.actions if a.kind == "start-domain")
    assert filled.id in start.depends_on
    assert fs.id in filled.depends_on
    assert filled.argvs == (
        ("/usr/bin/reconciler", "helper", "provision-check", "--vm", "vm100", "--image", "/srv/images/busybox.tar"),
        ("xfs_admin", "-L", "rprov-try2", "/dev/drbd0"),
        ("unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--",
         "/usr/bin/reconciler", "helper", "provision-run", "--vm", "vm100", "--device", "/dev/drbd0", "--timeout",
         "600", "--image", "/srv/images/busybox.tar"),
        ("xfs_admin", "-L", "rprov-done", "/dev/drbd0"))
    assert [c.mutating for c in filled.commands] == [False, True, True, True]
    assert [c.retry for c in filled.commands] == [True, True, False, True]  # the fill itself is never repeated
    assert all(c.timeout_s == 600 + 120 for c in filled.commands)
    assert filled.identity == "2"
    assert filled.devices == ("/dev/drbd0",)


def test_nothing_is_provisioned_while_the_domain_runs_nor_on_the_secondary() -> None:
    desired = make_node(provisioned_vm())
    assert plan_node(desired, converged(desired)).is_empty
    secondary = make_node(provisioned_vm(node="himbeere"), node="himbeere")
    assert "provision-fs" not in [a.kind for a in plan_node(secondary, empty_observed("himbeere")).actions]


def test_a_paused_or_crashed_domain_that_exists_is_not_a_reason_to_provision() -> None:
    desired = make_node(provisioned_vm())
    observed = converged(desired)
    paused = observed.domains[0].model_copy(update={"state": "paused"})
    assert isinstance(paused, DomainState)
    plan = plan_node(desired, observed.model_copy(update={"domains": (paused,)}))
    assert "provision-fs" not in [a.kind for a in plan.actions]


def sig(label: str | None, kind: str | None = "xfs") -> Signature:
    return Signature(device="/dev/drbd0", type=kind, label=label)


@pytest.mark.parametrize(("found", "attempt", "decision", "words"), [
    (sig(LABEL_NEW), 1, "run", "made for provisioning and never filled"),
    (sig(LABEL_DONE), 1, "done", "provisioned already"),
    (sig(LABEL_DONE), 7, "done", "provisioned already"),
    (sig("rprov-try1"), 1, "failed", "attempt 1 of /dev/drbd0 failed or was interrupted; it is not retried until the "
                                     "desired state names a new attempt (provision: attempt: 2)"),
    (sig("rprov-try3"), 2, "failed", "attempt 3"),
    (sig("rprov-try1"), 2, "run", "the filesystem must still be empty"),
    (sig(None), 1, "leave", "not made for provisioning (label (none))"),
    (sig("guestroot"), 1, "leave", "it is the guest's"),
    (sig("cloudimg-rootfs"), 2, "leave", "provisioning does not apply"),
    (sig("rprov-tryX"), 1, "leave", "not made for provisioning"),
    (sig(None, None), 1, "refuse", "carries no filesystem"),
    (sig(None, "ext4"), 1, "leave", "signature of type ext4"),
    (sig(None, "swap"), 1, "leave", "it is the guest's"),
    (None, 1, "refuse", "could not tell"),
])
def test_the_label_decides(found: Signature | None, attempt: int, decision: str, words: str) -> None:
    verdict = provision_verdict("/dev/drbd0", found, attempt)
    assert verdict.decision == decision
    assert words in verdict.reason


def test_rprov_new_without_this_node_s_record_of_making_it_waits_for_a_new_attempt() -> None:
    verdict = provision_verdict("/dev/drbd0", sig(LABEL_NEW), 1, made_here=False)
    assert verdict.decision == "failed"
    assert "no record of making it for provisioning" in verdict.reason
    assert "provision: attempt: 2" in verdict.reason
    assert provision_verdict("/dev/drbd0", sig(LABEL_NEW), 2, made_here=False).decision == "run"


def test_the_journal_only_changes_the_words_of_a_failure() -> None:
    verdict = provision_verdict("/dev/drbd0", sig("rprov-try1"), 1, journal_names_device=True)
    assert verdict.decision == "failed"
    assert "interrupted (the crash journal names it)" in verdict.reason


def test_labels_fit_xfs_and_round_trip() -> None:
    assert all(len(label) <= 12 for label in (LABEL_NEW, LABEL_DONE, label_try(999)))
    assert tried_attempt(label_try(42)) == 42
    assert tried_attempt("rprov-try0") is None
    assert tried_attempt("rprov-try1000") is None
    with pytest.raises(ValueError, match="outside"):
        label_try(1000)


@pytest.mark.parametrize("image", ["srv/x.tar", "/srv/../etc/shadow", "/srv/./x", "/srv//x", "/srv/-rf", "/srv/x y"])
def test_unsafe_images_never_reach_an_argv(image: str) -> None:
    with pytest.raises(UnsafeNameError):
        run_argv("vm100", "/dev/drbd0", None, image, 60)
