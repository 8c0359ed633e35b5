"""Topics and keywords on Quantum Computing Stack Exchange (data dump to 2018-09-02, CC BY-SA;
Source: Quantum Computing Stack Exchange, https://quantumcomputing.stackexchange.com, by its
contributors, adapted to CSV by the Personify project; see the dataset's README): predict each
question's tags from its title and body.

Temporal split: questions ordered by creation time, the first 80 % train (their tags are the
labels), the newest 20 % test. Metrics: precision@3 and recall@3 of the three best tags
against the question's own tags (1-5 of them), averaged over test questions, with bootstrap 95 %
intervals (1,000 resamples of test questions) of the difference to the baseline.

- ``topics``: :class:`personify.insights.topics.TopicModel` (what ``personify insights topics``
  fits from a tenant's labelled items): hashed word + character n-gram TF-IDF, label centroids
  blended with the 10 nearest labelled texts' votes.
- ``tfidf_knn`` baseline: scikit-learn TfidfVectorizer (words, sublinear tf) and the 10 nearest
  training questions by cosine, each voting its tags with its similarity.
- ``popular`` baseline: the three most frequent training tags for everyone.

    nice -n 10 python benchmarks/tags.py
"""

from __future__ import annotations

import csv
import gzip
import heapq
import os
import sys
import time
from collections import Counter, defaultdict
from operator import itemgetter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from benchmarks._report import write_results
from personify.insights.topics import TopicModel

DATA = (Path(__file__).resolve().parents[2] / "shared" / "datasets"
        / "stackexchange_quantumcomputing_2018" / "posts.csv.gz")
K = 3


def load() -> list[tuple[str, str, list[str]]]:
    with gzip.open(DATA, "rt", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["post_type"] == "question"]
    rows.sort(key=lambda r: r["creation_date"])
    return [(r["creation_date"], f"{r['title']}\n{r['body_text']}",
             [t for t in r["question_tags"].split("|") if t]) for r in rows]


def at_k(predicted: list[str], truth: list[str]) -> tuple[float, float]:
    hits = len(set(predicted[:K]) & set(truth))
    return hits / K, hits / len(truth)


def knn_baseline(train: list[tuple[str, str, list[str]]], test_texts: list[str],
                 ) -> list[list[str]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True)
    x_train = vectorizer.fit_transform([t for _, t, _ in train])
    x_test = vectorizer.transform(test_texts)
    sims = (x_test @ x_train.T).toarray()
    out = []
    for row in sims:
        votes: defaultdict[str, float] = defaultdict(float)
        for j in np.argsort(-row)[:10]:
            for tag in train[j][2]:
                votes[tag] += float(row[j])
        # heapq.nlargest is what Counter.most_common uses: the same order, ties included
        out.append([tag for tag, _ in heapq.nlargest(K, votes.items(), key=itemgetter(1))])
    return out


def bootstrap(a: np.ndarray, b: np.ndarray, rounds: int = 1000) -> list[float]:
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(a), size=(rounds, len(a)))
    diffs = a[idx].mean(axis=1) - b[idx].mean(axis=1)
    return [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))]


def main() -> None:
    load_before = os.getloadavg()
    questions = load()
    cut = int(len(questions) * 0.8)
    train, test = questions[:cut], questions[cut:]
    texts = [t for _, t, _ in test]
    started, cpu = time.perf_counter(), time.process_time()
    model = TopicModel.fit([t for _, t, _ in train], [tags for _, _, tags in train])
    fit_seconds = time.perf_counter() - started
    ours = [[topic.label for topic in model.predict(t, K)] for t in texts]
    topics_cpu = time.process_time() - cpu
    started = time.perf_counter()
    knn = knn_baseline(train, texts)
    knn_seconds = time.perf_counter() - started
    popular = [tag for tag, _ in Counter(t for _, _, tags in train for t in tags).most_common(K)]
    scored = {}
    for name, predictions in (("topics", ours), ("tfidf_knn", knn),
                              ("popular", [popular] * len(test))):
        pr = np.array([at_k(p, tags) for p, (_, _, tags) in zip(predictions, test, strict=True)])
        scored[name] = pr
    metrics = {
        "tag_precision@3": float(scored["topics"][:, 0].mean()),
        "tag_recall@3": float(scored["topics"][:, 1].mean()),
        "tag_precision@3_tfidf_knn_baseline": float(scored["tfidf_knn"][:, 0].mean()),
        "tag_recall@3_tfidf_knn_baseline": float(scored["tfidf_knn"][:, 1].mean()),
        "tag_precision@3_popular_baseline": float(scored["popular"][:, 0].mean()),
        "tag_recall@3_popular_baseline": float(scored["popular"][:, 1].mean()),
        "tag_precision@3_gain_vs_knn_ci95": bootstrap(scored["topics"][:, 0],
                                                       scored["tfidf_knn"][:, 0]),
        "tag_recall@3_gain_vs_knn_ci95": bootstrap(scored["topics"][:, 1],
                                                    scored["tfidf_knn"][:, 1]),
        "tag_train_questions": len(train),
        "tag_test_questions": len(test),
        "tag_labels": len(model.names),
        "tag_topics_fit_seconds": fit_seconds,
        "tag_topics_cpu_seconds": topics_cpu,
        "tag_knn_seconds": knn_seconds,
        "load_average": list(load_before),
    }
    path = write_results(
        "tags", metrics, split={"cut": test[0][0], "train_until": train[-1][0]},
        attribution="Contains data from Quantum Computing Stack Exchange "
                    "(https://quantumcomputing.stackexchange.com), Stack Exchange Data Dump "
                    "(content to 2018-09-02), by its contributors, licensed CC BY-SA 3.0/4.0; "
                    "adapted (CSV conversion, HTML stripped) by the Personify project.")
    for key, value in metrics.items():
        print(f"{key:42s} {value}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
