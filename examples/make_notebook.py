"""Write and execute examples/notebook.ipynb (the notebook tour of the Python API).

    python examples/make_notebook.py      # needs the test extra (nbclient, nbformat, ipykernel)

The executed notebook is committed with its outputs, so it reads on GitHub as run;
tests/test_notebook.py executes it again on every test run.
"""
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent

CELLS = [
    ("md", "# fairaudit in a notebook\n\n"
           "`fa.audit` takes an allocator (a file, a function, a fitted model) and the people it decides on "
           "(a file or a DataFrame), runs the checks and returns a result that shows itself as a table."),
    ("code", "import os\n"
             "if os.path.basename(os.getcwd()) == \"examples\":   # opened from examples/: paths are from the repository root\n"
             "    os.chdir(\"..\")\n"
             "import pandas as pd\n"
             "import fairaudit as fa\n\n"
             "df = pd.read_csv(\"examples/data/population.csv\")\n"
             "df.head()"),
    ("md", "Deterministic top-k on these 200 people: are the groups selected at similar rates?"),
    ("code", "result = fa.audit(\"examples/allocators/top_k.py\", data=df, checks=[\"selection_rates\"])\n"
             "result"),
    ("md", "One row per check, as a DataFrame:"),
    ("code", "result.to_frame()"),
    ("md", "A result is not a boolean — a check can be inconclusive. Ask what you mean:"),
    ("code", "try:\n"
             "    bool(result)\n"
             "except ValueError as e:\n"
             "    print(e)\n"
             "result.passed, result.failed, result.exit_code"),
    ("md", "A function defined here is a target too (`@fa.selector`: it picks `k` of the scores)."),
    ("code", "@fa.selector(k=20)\n"
             "def lottery(scores, k, rng):\n"
             "    return rng.choice(len(scores), size=k, replace=False)\n\n"
             "lottery_result = fa.audit(lottery, data=df, checks=[\"selection_rates\"], seed=1)\n"
             "print(repr(lottery_result))"),
    ("md", "The full HTML report and the JSON, as `fairaudit check --html/--json` writes them:"),
    ("code", "import tempfile, pathlib\n"
             "out = pathlib.Path(tempfile.mkdtemp())\n"
             "result.write_html(out / \"report.html\")\n"
             "result.write_json(out / \"result.json\")\n"
             "sorted(p.name for p in out.iterdir())"),
]


def build() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
                for kind, src in CELLS]
    return nb


def execute(nb, cwd: Path = HERE, timeout: int = 120) -> nbformat.NotebookNode:
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


if __name__ == "__main__":
    nb = execute(build())
    for i, cell in enumerate(nb.cells):          # stable ids: a re-run changes only what ran differently
        cell["id"] = f"cell-{i}"
    nbformat.write(nb, HERE / "notebook.ipynb")
    print(f"wrote {HERE / 'notebook.ipynb'}")
