"""The one train/validation split of a clinic's cases: by patient, seeded (no torch, no Qt).

Why one function: the export (``training.export``) and workspace training (``training.train``)
used to split differently (by patient vs by case), so frames of one patient could sit on both
sides of a training split and its held-out Dice said more about memory than about a new
patient. Both now call ``split_cases_by_patient``.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable


def patient_key(case_id: str, patient_id: str | None) -> str:
    """The group a case is split with: its patient, or the case alone when it has none."""
    return patient_id if patient_id else f"\0case:{case_id}"


def split_by_patient(groups: dict[str, int], val_fraction: float, seed: int = 0) -> set[str]:
    """The patient keys that go to validation, given {patient key: number of cases}.

    Patients are ordered by sha256(seed, key); each is taken when it brings the validation count
    strictly closer to round(val_fraction * cases) (on a tie train keeps it). Never all patients;
    at least one when ``val_fraction`` > 0 and there are two or more.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if val_fraction == 0.0 or len(groups) < 2:
        return set()
    total = sum(groups.values())
    target = max(1, round(val_fraction * total))
    order = sorted(groups, key=lambda k: hashlib.sha256(f"{seed}\0{k}".encode("utf-8", "surrogatepass")).digest())
    val: list[str] = []
    n = 0
    for key in order:
        if n >= target:
            break
        if abs(n + groups[key] - target) < abs(n - target):
            val.append(key)
            n += groups[key]
    if not val:
        val = [order[0]]
    if len(val) == len(groups):
        val = val[:-1]
    return set(val)


def split_cases_by_patient(cases: Iterable[tuple[str, str | None]], val_fraction: float,
                           seed: int = 0) -> tuple[list[str], list[str]]:
    """(train case ids, validation case ids) of ``(case_id, patient_id)`` pairs, in input order."""
    cases = list(cases)
    counts: dict[str, int] = {}
    for cid, pid in cases:
        k = patient_key(cid, pid)
        counts[k] = counts.get(k, 0) + 1
    val = split_by_patient(counts, val_fraction, seed)
    tr = [cid for cid, pid in cases if patient_key(cid, pid) not in val]
    va = [cid for cid, pid in cases if patient_key(cid, pid) in val]
    return tr, va
