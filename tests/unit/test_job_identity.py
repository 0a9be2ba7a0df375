"""The job id that keys the table: SLURM's ids first, and a search's trials apart from their worker's."""

import pytest

from retina_seg.launch.job_identity import SEARCH_TRIAL_ENV, job_id

SLURM_KEYS = ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_ID", SEARCH_TRIAL_ENV)


@pytest.fixture
def environment(monkeypatch):
    for key in SLURM_KEYS:
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_an_array_task_is_array_underscore_task(environment):
    environment.setenv("SLURM_ARRAY_JOB_ID", "4242")
    environment.setenv("SLURM_ARRAY_TASK_ID", "3")
    environment.setenv("SLURM_JOB_ID", "4245")
    assert job_id("7") == "4242_3"


def test_each_trial_of_a_search_worker_on_slurm_has_its_own_id(environment):
    environment.setenv("SLURM_ARRAY_JOB_ID", "4242")
    environment.setenv("SLURM_ARRAY_TASK_ID", "1")
    ids = set()
    for trial in (0, 5):
        environment.setenv(SEARCH_TRIAL_ENV, str(trial))
        ids.add(job_id(str(trial)))
    assert ids == {"4242_1_trial0", "4242_1_trial5"}


def test_off_slurm_the_launcher_id_is_kept_and_a_trial_is_its_number(environment):
    environment.setenv(SEARCH_TRIAL_ENV, "5")
    assert job_id("5") == "5"  # the search sets hydra.job.id to the trial number
    environment.delenv(SEARCH_TRIAL_ENV)
    assert job_id(None).isdigit()  # the process id
