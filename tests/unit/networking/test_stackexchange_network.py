from pathlib import Path

from personify.data.stackexchange import DATASET_NAME, SUGGESTED_CUT, load_stackexchange
from personify.networking import stackexchange as se
from personify.networking.evaluation import temporal_task


def test_loads_the_network_and_its_suggested_split(datasets_dir: Path) -> None:
    network = load_stackexchange(datasets_dir / DATASET_NAME)
    assert len(network.people) == 3460  # the Community bot is left out
    assert len(network.interactions) == 3288
    assert "qiskit" in network.tags
    xs = se.interactions(network)
    train = [x for x in xs if x.timestamp < SUGGESTED_CUT]
    assert len(train) == 2630
    answer = next(x for x in xs if x.kind == "answer")
    assert answer.offered is True and answer.thread is not None
    task = temporal_task(xs, SUGGESTED_CUT, network.people)
    assert task.warm and task.cold and len(task.warm_universe) == 336


def test_profiles_name_tags_whose_words_the_about_text_contains(datasets_dir: Path) -> None:
    network = load_stackexchange(datasets_dir / DATASET_NAME)
    profiles = se.profiles(network)
    assert profiles
    for pid, profile in list(profiles.items())[:50]:
        about = network.people[pid].about_me.lower()
        for tag in profile.topics:
            assert all(word in about for word in tag.split("-"))
