#!/usr/bin/env python3
"""Converts the scikit-learn toy datasets in ../shared/data/sklearn into the CSVs shipped in data/.

The sklearn CSVs open with a `n_samples,n_features,class names...` line instead of a header; digits has
no such line at all. The shipped copies get a real header row whose last column is `label`.
Run once from the repository root: `python3 scripts/convert_sklearn_data.py ../shared/data/sklearn`.
"""
import csv, gzip, pathlib, sys

FEATURES = {
    "iris": ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"],
    "wine": ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
             "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
             "od280_od315_of_diluted_wines", "proline"],
}

def convert(source: pathlib.Path, target: pathlib.Path, names):
    with open(source) as f:
        rows = list(csv.reader(f))
    n_samples, n_features = int(rows[0][0]), int(rows[0][1])
    body = rows[1:]
    assert len(body) == n_samples, (source, len(body), n_samples)
    header = names or [f"feature_{i}" for i in range(n_features)]
    assert len(header) == n_features
    write(target, header, body)

def write(target, header, body):
    with open(target, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header + ["label"])
        for row in body:
            assert len(row) == len(header) + 1, (target, row)
            w.writerow(row)

def main():
    src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/sklearn")
    out = pathlib.Path("data")
    out.mkdir(exist_ok=True)
    convert(src / "iris.csv", out / "iris.csv", FEATURES["iris"])
    convert(src / "wine_data.csv", out / "wine.csv", FEATURES["wine"])
    base = ["radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
            "concave_points", "symmetry", "fractal_dimension"]
    names = [f"{kind}_{b}" for kind in ("mean", "error", "worst") for b in base]
    convert(src / "breast_cancer.csv", out / "breast_cancer.csv", names)
    with gzip.open(src / "digits.csv.gz", "rt") as f:
        body = list(csv.reader(f))
    write(out / "digits.csv", [f"pixel_{i}" for i in range(64)], body)

if __name__ == "__main__":
    main()
