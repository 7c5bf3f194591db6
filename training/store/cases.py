"""Reading and updating case rows: the worklist's one query (no file I/O; unchanged rows reuse
their cached ``Case``), one case and its images, and a case's status, homography and patient.
Every field the worklist shows is kept on the ``cases`` row, so 10,000 cases list with one query.
New cases come in through importing.py and video.py.
"""
from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np

from training.imageio import read_rgb
from training.store.records import STATUSES, Case
from training.timestamps import utc_now


def _h_to_json(hm: np.ndarray) -> str:
    arr = np.asarray(hm, dtype=np.float64).reshape(3, 3)
    return json.dumps([float(v) for v in arr.ravel()])


def _h_from_json(text: str | None) -> np.ndarray:
    """The stored homography, read-only: Case objects are cached and shared between calls."""
    arr = np.array(json.loads(text), dtype=np.float64).reshape(3, 3) if text else np.eye(3, dtype=np.float64)
    arr.flags.writeable = False
    return arr


def _finite(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if np.isfinite(v) else None


class CasesMixin:
    """Workspace's case rows (uses its root, _lock, _fetch, _read, _write, _event, _case_cache)."""

    def _case_from_row(self, r: dict) -> Case:
        return Case(
            id=r["id"], patient_id=r["patient_id"], status=r["status"],
            wli_path=self.root / r["wli_path"],
            nbi_path=(self.root / r["nbi_path"]) if r["nbi_path"] else None,
            width=r["width"], height=r["height"], homography=_h_from_json(r["homography"]),
            reg_quality=r["reg_quality"], nbi_synthetic=bool(r["nbi_synthetic"]), updated_at=r["updated_at"],
            dice_vs_model=r["dice_vs_model"], exclude_reason=r["exclude_reason"],
            iou_vs_model=r["iou_vs_model"], latest_rev=r["latest_rev"], latest_source=r["latest_source"],
            reg_inliers=r["reg_inliers"], reg_error=r["reg_error"], reg_method=r["reg_method"],
            nbi_width=r["nbi_width"], nbi_height=r["nbi_height"], wli_sha256=r["wli_sha256"],
            nbi_sha256=r["nbi_sha256"], source_wli=r["source_wli"], source_nbi=r["source_nbi"],
            created_at=r["created_at"],
        )

    def _query_cases(self, sql: str, params: Iterable = ()) -> list[Case]:
        """Run a ``SELECT * FROM cases`` query; unchanged rows reuse their cached Case (a 10,000-case
        worklist refresh then costs little more than the query itself)."""
        with self._lock:
            cols, rows = self._fetch(sql, params)
            cache = self._case_cache
            out = []
            for row in rows:
                hit = cache.get(row[0])
                if hit is not None and hit[0] == row:
                    out.append(hit[1])
                    continue
                case = self._case_from_row(dict(zip(cols, row, strict=True)))
                cache[row[0]] = (row, case)
                out.append(case)
            return out

    def cases(self, status: str | Iterable[str] | None = None, patient_id: str | None = None) -> list[Case]:
        """All cases (optionally with a status or one of several), ordered by id; one query, no file I/O."""
        sql, params = "SELECT * FROM cases", []
        where = []
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            bad = [s for s in wanted if s not in STATUSES]
            if bad:
                raise ValueError(f"unknown status {bad[0]!r}; expected one of {STATUSES}")
            where.append(f"status IN ({','.join('?' * len(wanted))})")
            params += wanted
        if patient_id is not None:
            where.append("patient_id = ?")
            params.append(patient_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id COLLATE NOCASE"
        return self._query_cases(sql, params)

    def case_count(self, status: str | Iterable[str] | None = None) -> int:
        if status is None:
            return int(self._read("SELECT count(*) AS n FROM cases")[0]["n"])
        wanted = [status] if isinstance(status, str) else list(status)
        return int(self._read(f"SELECT count(*) AS n FROM cases WHERE status IN ({','.join('?' * len(wanted))})",
                              wanted)[0]["n"])

    def status_counts(self) -> dict[str, int]:
        """{status: count} for every status (zeros included)."""
        counts = dict.fromkeys(STATUSES, 0)
        for r in self._read("SELECT status, count(*) AS n FROM cases GROUP BY status"):
            counts[r["status"]] = int(r["n"])
        return counts

    def case(self, case_id: str) -> Case:
        """The case with this id; KeyError when there is none."""
        rows = self._query_cases("SELECT * FROM cases WHERE id = ?", (case_id,))
        if not rows:
            raise KeyError(f"no case {case_id!r} in {self.root}")
        return rows[0]

    def has_case(self, case_id: str) -> bool:
        return bool(self._read("SELECT 1 AS x FROM cases WHERE id = ?", (case_id,)))

    def find_case_by_hash(self, wli_sha256: str, nbi_sha256: str | None = None) -> str | None:
        rows = self._read("SELECT id FROM cases WHERE wli_sha256 = ? AND nbi_sha256 = ?",
                          (wli_sha256, nbi_sha256 or ""))
        return rows[0]["id"] if rows else None

    def load_wli(self, case_id: str) -> np.ndarray:
        """The case's WLI image, RGB uint8."""
        return read_rgb(self.case(case_id).wli_path)

    def load_nbi(self, case_id: str) -> np.ndarray | None:
        """The case's NBI image (raw, unwarped), RGB uint8; None for a WLI-only case."""
        c = self.case(case_id)
        return read_rgb(c.nbi_path) if c.nbi_path is not None else None

    def set_status(self, case_id: str, status: str, reason: str | None = None, author: str | None = None,
                   only_from: Iterable[str] | None = None) -> bool:
        """Set a case's status (one of STATUSES); "excluded" keeps ``reason``; logged.

        ``only_from``: change it only if the current status is one of these, checked inside the same
        write transaction (a background "new -> predicted" must not undo a clinician's "excluded"
        written a moment earlier by another connection). Returns whether the status was set.
        """
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {STATUSES}")
        with self._write() as db:
            row = db.execute("SELECT status FROM cases WHERE id = ?", (case_id,)).fetchone()
            if row is None:
                raise KeyError(f"no case {case_id!r}")
            if only_from is not None and row[0] not in set(only_from):
                return False
            db.execute("UPDATE cases SET status=?, exclude_reason=?, updated_at=? WHERE id=?",
                       (status, reason if status == "excluded" else None, utc_now(), case_id))
            self._event(db, "status", case_id, {"from": row[0], "to": status, "reason": reason, "author": author})
        return True

    def set_homography(self, case_id: str, homography: np.ndarray, quality: str | None = "manual",
                       inliers: int | None = None, reproj_error: float | None = None,
                       method: str | None = "manual") -> None:
        """Replace a case's NBI->WLI homography (re-registration or a manual fix); logged."""
        hm = np.asarray(homography, dtype=np.float64).reshape(3, 3)
        with self._write() as db:
            old = db.execute("SELECT homography FROM cases WHERE id = ?", (case_id,)).fetchone()
            if old is None:
                raise KeyError(f"no case {case_id!r}")
            db.execute("UPDATE cases SET homography=?, reg_quality=?, reg_inliers=?, reg_error=?, reg_method=?, "
                       "updated_at=? WHERE id=?",
                       (_h_to_json(hm), quality, inliers, _finite(reproj_error), method, utc_now(), case_id))
            self._event(db, "set_homography", case_id, {"old": json.loads(old[0]), "new": json.loads(_h_to_json(hm)),
                                                        "quality": quality, "method": method})

    def set_patient(self, case_id: str, patient_id: str | None) -> None:
        with self._write() as db:
            if db.execute("UPDATE cases SET patient_id=?, updated_at=? WHERE id=?",
                          (patient_id, utc_now(), case_id)).rowcount == 0:
                raise KeyError(f"no case {case_id!r}")
            self._event(db, "set_patient", case_id, {"patient_id": patient_id})
