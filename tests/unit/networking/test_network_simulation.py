from personify.networking.simulation import NetworkSimConfig, simulate_network


def test_reciprocal_recommendations_are_accepted_more_often_in_the_simulator() -> None:
    out = simulate_network(NetworkSimConfig(people=120, encounters=20, k=5, seed=3))
    assert out["history_interactions"] > 100
    lo_rec, _ = out["accept_rate_reciprocal_ci95"]
    _, hi_one = out["accept_rate_one_sided_ci95"]
    assert lo_rec > hi_one
