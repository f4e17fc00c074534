"""Two replicas changing profiles at the same moment: each sees the other's change."""

from __future__ import annotations

from typing import Any

from harness import eventually
from knowledge_service.app import Knowledge


async def test_no_replica_misses_a_change_that_raced_its_own(core: Knowledge, dense_encoder) -> None:
    a = core
    b = await Knowledge.open(a.settings, dense=dense_encoder, stores=a.stores)
    try:
        run = a.runner.run
        interleaved = False

        async def b_changes_first(fn: Any, *args: Any) -> Any:
            # When A is about to advance the change stamp, B makes a whole change of its own.
            nonlocal interleaved
            writes_stamp = getattr(fn, "__name__", "") in ("put", "put_if") and "stamp" in repr(args[:1])
            if not interleaved and writes_stamp:
                interleaved = True
                await b.registry.put("from-b", {"top_k": 3})
            return await run(fn, *args)

        a.runner.run = b_changes_first  # type: ignore[method-assign]
        await a.registry.put("from-a", {"top_k": 4})
        assert interleaved
        await eventually(
            lambda: a.registry.find("from-b") and b.registry.find("from-a"),
            timeout=3 * a.settings.profile_poll_s + 2,
            what="each replica sees the other's change (else a replica missed a change)",
        )
        assert a.registry.find("from-b").settings.top_k == 3
        assert b.registry.find("from-a").settings.top_k == 4
    finally:
        await b.close()
