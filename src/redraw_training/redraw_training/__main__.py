"""python -m redraw_training <command> [options]: the console scripts without an install."""

import sys

COMMANDS = ("pretrain", "calibrate", "finetune", "evaluate", "export", "rollout", "compare", "convert-bags")


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(f"usage: python -m redraw_training {{{','.join(COMMANDS)}}} [options]  (each has --help)", file=sys.stderr)
        return 2
    import importlib

    module = importlib.import_module(f"redraw_training.cli.{sys.argv[1].replace('-', '_')}")
    return module.main(sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
