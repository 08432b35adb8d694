"""The login throttle's clock (``dispatcher/console/throttle.py``), in Redis: five passwords a
minute for a name and twenty attempts a minute from an address, in a sliding window. The
throttle under a burst of concurrent guesses is ``test_login_burst.py``."""

from __future__ import annotations

from dispatcher.console.throttle import KEY_PREFIX, address_key, admit, name_key, retry_after


def test_the_throttle_counts_five_passwords_a_minute_for_a_name_in_a_sliding_window(redis_client):
    for t in (0, 10, 20, 30, 40):
        assert admit(redis_client, "ann", f"10.0.0.{t}", t) == 0
    assert admit(redis_client, "ann", "10.0.1.1", 50) == 10  # until the first leaves the window
    assert admit(redis_client, "bob", "10.0.1.1", 50) == 0  # another name is not held back
    assert admit(redis_client, "ann", "10.0.1.1", 60) == 0  # the first left: one more is counted
    assert admit(redis_client, "ann", "10.0.1.1", 61) == 9


def test_the_throttle_counts_twenty_attempts_a_minute_from_an_address(redis_client):
    for i in range(20):
        assert admit(redis_client, f"name-{i}", "10.9.9.9", 100) == 0
    assert admit(redis_client, "name-20", "10.9.9.9", 100.5) == 60
    assert admit(redis_client, "name-20", "10.9.9.8", 100.5) == 0


def test_a_wait_is_whole_seconds_of_at_least_one_and_keys_hold_no_typed_text():
    assert [retry_after(ms) for ms in (1, 999, 1000, 1001, 59_500)] == [1, 1, 1, 2, 60]
    name, address = name_key("olivia\udcff"), address_key("10.0.0.1")
    assert name.startswith(KEY_PREFIX + "name:") and "olivia" not in name and len(name) < 100
    assert address.startswith(KEY_PREFIX + "address:") and "10.0.0.1" not in address
    assert name_key("olivia") != address_key("olivia")
