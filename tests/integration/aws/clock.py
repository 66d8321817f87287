"""A clock for the adapters' retries that tests control."""


class FakeClock:
    """Seconds that pass only when someone sleeps on this clock or says time went by."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
