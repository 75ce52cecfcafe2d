"""The validation cache must hit: the limit rules are created once, not per request."""

from __future__ import annotations

from strawberry.extensions.validation_cache import _get_validate_cache

from tests.conftest import Api


async def test_repeated_documents_are_validated_once(api: Api) -> None:
    cache = _get_validate_cache(256)
    document = "{ onboardingFlow { steps { step key } } }"
    await api.execute(document)
    before = cache.cache_info()

    for _ in range(5):
        await api.execute(document)

    after = cache.cache_info()
    assert after.hits - before.hits == 5
    assert after.misses == before.misses
