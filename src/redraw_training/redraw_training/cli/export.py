"""export: encoder + actor of a checkpoint -> ONNX (deterministic: posterior mode, action mean) + manifest.

    export --checkpoint runs/pg_redraw --out models/pg_redraw
writes models/pg_redraw/policy.onnx and policy.manifest.json (sha256, preprocessing, tensors, action spec), both
put in place only after the ONNX graph matched torch (a failed export leaves --out as it was); an --out that
already holds an export is replaced only with --overwrite.
"""

from __future__ import annotations

import argparse

from redraw_common.cli import entry_point

from ..checkpoint import CheckpointError
from ..export import ParityError, export_policy
from .common import fail, say, set_threads


@entry_point("export")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="run folder or checkpoint folder")
    parser.add_argument("--out", required=True, help="folder for policy.onnx and policy.manifest.json")
    parser.add_argument("--model-id", default=None, help="model id recorded in the manifest (default: redraw-<kind>-<time>)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="fail if ONNX and torch differ by more than this")
    parser.add_argument("--overwrite", action="store_true", help="replace the export that --out already holds")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: single-frame inference gains nothing from more, and loses a lot on a busy machine)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    say([
        f"export: encoder + actor of {args.checkpoint} -> ONNX (uint8 obs (1,H,W,C) -> action (1,A); posterior mode, actor mean)",
        f"  writing {args.out}/policy.onnx and {args.out}/policy.manifest.json; checks onnxruntime against torch",
        f"  look: cat {args.out}/policy.manifest.json",
    ])
    try:
        result = export_policy(args.checkpoint, args.out, model_id=args.model_id, overwrite=args.overwrite, tolerance=args.tolerance)
    except ParityError as exc:
        fail(str(exc), code=1)
    except (CheckpointError, ValueError) as exc:
        fail(str(exc))
    say([f"done: {result['model']} (sha256 {result['sha256'][:16]}...), max |onnx - torch| = {result['max_abs_diff']:.2e} "
         f"over {result['checked_inputs']} inputs"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
