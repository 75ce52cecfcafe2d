"""onboardingFlow and myOnboardingProgress."""

from __future__ import annotations

from tests.conftest import Api

FLOW = "{ onboardingFlow { steps { step key title kpiId } } }"
PROGRESS = "{ myOnboardingProgress { completedSteps nextStep totalSteps isComplete } }"


async def test_flow_is_public_and_ordered(api: Api) -> None:
    body = await api.execute(FLOW)

    steps = body["data"]["onboardingFlow"]["steps"]
    assert [s["step"] for s in steps] == [1, 2, 3, 4]
    assert steps[0]["kpiId"] == "onboarding.step_1_completed"
    assert any(s["kpiId"] is None for s in steps)


async def test_progress_needs_a_token(api: Api) -> None:
    body = await api.execute(PROGRESS)

    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["path"] == ["myOnboardingProgress"]


async def test_progress_is_the_signed_in_users_own(api: Api) -> None:
    await api.complete(1, user="alice")
    await api.complete(2, user="alice")

    alice = await api.execute(PROGRESS, headers=api.auth("alice"))
    bob = await api.execute(PROGRESS, headers=api.auth("bob"))

    assert alice["data"]["myOnboardingProgress"] == {
        "completedSteps": [1, 2],
        "nextStep": 3,
        "totalSteps": 4,
        "isComplete": False,
    }
    assert bob["data"]["myOnboardingProgress"]["completedSteps"] == []
