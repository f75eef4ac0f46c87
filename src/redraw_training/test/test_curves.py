import json

import pytest

from redraw_training.curves import CurvesError, plot_curves


def test_plots_the_keys_present_and_refuses_bad_runs(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"step": s, "wm/image": 100.0 / (s + 1), "ac/return": s * 0.1} for s in range(0, 500, 50)]
    (run / "scalars.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    png = plot_curves(run)
    assert png == run / "curves.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    with pytest.raises(CurvesError, match="none of the keys"):
        plot_curves(run, ("nope",))
    (run / "scalars.jsonl").write_text('{"step": 1}\n{"step": 2, "wm/im')
    with pytest.raises(CurvesError, match="scalars.jsonl:2 is not a JSON line"):
        plot_curves(run)
    with pytest.raises(CurvesError, match="expected .*scalars.jsonl"):
        plot_curves(tmp_path / "missing")
