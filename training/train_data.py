"""What a run learns from: the training and validation datasets named by ``--data`` (the public
sets, an exported dataset folder, or a workspace), split by patient where the data has no split."""
from __future__ import annotations

from pathlib import Path


def _default_shared_root() -> Path:
    here = Path(__file__).resolve().parents[1]
    return (here / ".." / "shared" / "data").resolve()


def build_datasets(args, cfg, size: int, val_size: int):
    """(train dataset, val dataset or None, kind, workspace path or None)."""
    from training.copy_paste import CopyPasteConfig
    from training.data import AUG_PRESETS, ExportFolderDataset, PublicDataset, WorkspaceDataset
    from training.splits import split_cases_by_patient

    common = {"seed": args.seed, "mean": cfg.mean, "std": cfg.std}
    train_aug = AUG_PRESETS[getattr(args, "aug", "basic")]
    if args.data == "public":
        root = Path(args.shared_root) if args.shared_root else _default_shared_root()
        which = tuple(w.strip() for w in args.which.split(",") if w.strip())
        tr = PublicDataset(
            root,
            "train",
            which=which,
            tumour_repeat=args.tumour_repeat,
            negatives=not args.no_negatives,
            misregistration=args.misregistration,
            size=size,
            fold=args.fold,
            aug=train_aug,
            copy_paste=getattr(args, "copy_paste", 0.0),
            copy_paste_onto=getattr(args, "copy_paste_onto", "laryngeal"),
            copy_paste_decoys=getattr(args, "copy_paste_decoys", 0.0),
            copy_paste_scale=getattr(args, "copy_paste_scale", CopyPasteConfig().scale),
            copy_paste_edge=getattr(args, "copy_paste_edge", 0.0),
            **common,
        )
        val_which = tuple(w.strip() for w in args.val_which.split(",") if w.strip() and w.strip() in which)
        va = None
        if val_which:
            va = PublicDataset(root, "val", which=val_which, misregistration=args.misregistration, size=val_size,
                               fold=args.fold, kvasir_val=args.kvasir_val, **common)
        return tr, va, "public", None
    path = Path(args.data)
    common["aug"] = train_aug
    if (path / "manifest.csv").exists():
        full = ExportFolderDataset(path, None, size=size, **common)
        splits = {r[1] for r in full.rows}
        if "val" in splits:
            tr = ExportFolderDataset(path, "train", size=size, **common)
            va = ExportFolderDataset(path, "val", size=val_size, train=False, **common)
        else:
            tr_ids, va_ids = split_cases_by_patient(full.case_patients, args.val_fraction, args.seed)
            tr = _subset_rows(full, tr_ids, size, True)
            va = _subset_rows(full, va_ids, val_size, False) if va_ids else None
        return tr, va, "export", None
    if (path / "workspace.sqlite").exists():
        statuses = tuple(s.strip() for s in args.statuses.split(",") if s.strip())
        full = WorkspaceDataset(path, statuses=statuses, size=size, **common)
        if len(full) == 0:
            raise SystemExit(f"{path}: no case with status {'/'.join(statuses)} and a mask to learn from")
        tr_ids, va_ids = split_cases_by_patient(full.case_patients, args.val_fraction, args.seed)
        tr = full.subset(tr_ids)
        va = None
        if va_ids:
            va = full.subset(va_ids)
            va.train = False
            va.size = val_size
        return tr, va, "workspace", path
    raise SystemExit(f"--data {args.data!r}: not 'public', a workspace (workspace.sqlite) or an export (manifest.csv)")


def _subset_rows(ds, ids, size: int, train: bool):
    import copy

    keep = set(ids)
    out = copy.copy(ds)
    out.rows = [r for r in ds.rows if r[0] in keep]
    out.size = size
    out.train = train
    return out
