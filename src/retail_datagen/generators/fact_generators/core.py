"""FactDataGenerator: the daily simulation, composed from one mixin per domain.

(Work in progress: the orchestration is being filled in; the attribute map below is the
contract every mixin reads.)
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")


class FactDataGenerator:
    """Generates every fact table day by day into DuckDB or a SQLAlchemy database.

    Attributes:
        config: the :class:`~retail_datagen.config.models.RetailConfig` given.
        _seed: ``config.seed``.
        _master: :class:`~.data_loading_mixin.MasterData`, set by ``load_master_data``.
        _pools: :class:`~.data_loading_mixin.StorePools`, set by ``load_master_data``.
        _keyword_groups: bool (n_products, n_keyword_groups), the holiday keyword matches of
            every product (``seasonal_mixin.product_keyword_groups``), set at load.
        _publish_outbox: whether batches need ``TraceId`` (outbox on for this call).
        _state: :class:`~.state.CarriedState`, the day-carried state mirrored in ``gen_state_*``.
    """

    FACT_TABLES: ClassVar[tuple[str, ...]] = ()

    def _for_each_store(self, fn: Callable[[int], T]) -> list[T]:
        """``fn(store_index)`` for every store, on ``max_workers`` threads, in store order.

        Each store draws only from its own streams, so the result never depends on the
        number of workers.
        """
        n = len(self._master.stores.store_id)
        workers = self.config.performance.get_max_workers()
        if workers <= 1 or n <= 1:
            return [fn(i) for i in range(n)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fn, range(n)))

    def _placeholder(self) -> Any:  # pragma: no cover - removed when the engine lands
        return None
