"""One-call generation of a historical range from a config file."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime

from .models import FactGenerationSummary


def generate_historical_facts(
    config_path: str | os.PathLike[str],
    start_date: date | datetime,
    end_date: date | datetime,
) -> FactGenerationSummary:
    """Generate and validate the facts of ``start_date..end_date`` for the config at a path.

    Master data is generated first when the dimension tables are missing. The call blocks
    until the range is committed and validated. Inside a running event loop (a notebook, an
    async service) the generation runs on a private loop in a worker thread, because
    ``asyncio.run`` cannot nest; the calling loop is blocked meanwhile.

    Args:
        config_path: JSON config file (``RetailConfig.from_file``).
        start_date: First day of the range.
        end_date: Last day of the range, inclusive.

    Returns:
        The summary of the call, with ``validation_results`` filled in.

    Raises:
        ConfigError: The config file is missing or invalid.
        DateRangeError: ``end_date`` is before ``start_date`` or the range is not contiguous
            with the days already generated.
        GenerationError: A day failed; the days committed before it remain.
    """
    # Imported here: core imports every mixin, and the package __init__ imports this module.
    from retail_datagen.config.models import RetailConfig
    from retail_datagen.generators.master_generator import MasterDataGenerator

    from .core import FactDataGenerator

    config = RetailConfig.from_file(config_path)
    master = MasterDataGenerator(config)
    if not master.master_data_exists():
        master.generate_all()
    del master
    generator = FactDataGenerator(config)

    def run() -> FactGenerationSummary:
        return asyncio.run(
            generator.generate_historical_data(start_date, end_date, validate=True)
        )

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()
