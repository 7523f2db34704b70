"""The Evidently page's current-side sample: seeded, bounded, drawn from the predictions before their features join."""

from __future__ import annotations

from chispa import assert_df_equality

from driftline.monitoring.evidently_page import sample_rows


def test_a_small_window_is_taken_whole_and_a_large_one_sampled_the_same_way_on_a_rerun(spark) -> None:
    small = spark.range(500).toDF("id")
    assert sample_rows(small, 500, 500) is small
    big = spark.range(100_000).toDF("id").repartition(4, "id")
    first = sample_rows(big, 100_000, 1_000)
    n = first.count()
    assert 1_000 < n < 1_450          # each row with probability 0.012: 1 200 expected, at least the limit drawn
    assert_df_equality(first, sample_rows(big, 100_000, 1_000), ignore_row_order=True)   # seeded: a rerun agrees
    assert first.limit(1_000).count() == 1_000
