"""The whole local pipeline as a user drives it: the real ``ops`` CLI in its own process, the real awscli, over HTTP.

``python -m ops up --serve`` trains the demo model on 2 hosts (one DDP group), deploys it and keeps serving; then the
awscli uploads a dataset (``aws s3 cp``) and starts the pipeline (``aws stepfunctions start-execution``) exactly as
against AWS, the next training job reads what was uploaded, and predictions keep succeeding through the blue/green
update. Last, the runtime is killed with SIGKILL mid-training: nothing it started survives, and the next ``up``
serves the persisted endpoint at once and reports the interrupted execution as ABORTED.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local_aws.stepfunctions.executions import ExecutionStore
from tools import dataset

pytestmark = [pytest.mark.slow, pytest.mark.distributed, pytest.mark.timeout(1500)]

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
AWS = str(Path(sys.executable).parent / "aws")
CLASSES = {f"{i + 1:03d}.{n}" for i, n in enumerate(dataset.DIGIT_NAMES)}
TAG_ENV = "LOCAL_AWS_PROCESS_TAG"


def _clean_env(home: Path) -> dict[str, str]:
    """A user's shell: no AWS settings of the test session, no profile or config file that could leak in."""
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        HOME=str(home / "user"),
        LOCAL_RUNTIME_HOME=str(home),
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
        AWS_CONFIG_FILE=str(home / "user" / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "user" / "aws-credentials"),
    )
    (home / "user").mkdir(parents=True, exist_ok=True)
    return env


@dataclass
class Served:
    """An ``ops up --serve`` process and what a user's shell needs to talk to it."""

    home: Path
    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]  # the exports `ops env` printed, on top of a clean shell

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def aws(self, *args: str, check: bool = True) -> Any:
        done = subprocess.run(
            [AWS, *args, "--output", "json"], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )
        if check:
            assert done.returncode == 0, (args, done.stderr)
        return json.loads(done.stdout) if done.stdout.strip() else done

    def ops(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "ops", "--home", str(self.home), *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _start(home: Path, *extra: str, timeout: float = 900) -> Served:
    """Start ``ops up --serve`` and wait until it says it serves (or fail with its output)."""
    env = _clean_env(home)
    log = home / f"up-{time.time_ns()}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [PYTHON, "-m", "ops", "--home", str(home), "up", "--serve", "--aws-port", "0", "--api-port", "0", *extra],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while "serving;" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"ops up did not come up (rc {proc.returncode}):\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.5)
    exports = subprocess.run(
        [PYTHON, "-m", "ops", "--home", str(home), "env"], cwd=REPO, env=env, capture_output=True, text=True, check=True
    ).stdout
    for line in exports.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            env[name] = shlex.split(value)[0]
    return Served(home, proc, log, env)


def _recorded_tags(home: Path) -> set[str]:
    """The tags of the children a runtime of ``home`` has on record (processes.json)."""
    records = home / "processes.json"
    if not records.exists():
        return set()
    return {p["tag"] for p in json.loads(records.read_text()).get("processes", [])}


def _children_alive(home: Path, tags: set[str] | None = None) -> list[int]:
    """Live processes started by a runtime of ``home`` (every child carries the supervisor's tag): those with one of
    ``tags``, by default the tags on record; with none on record, every process that carries a tag at all."""
    tags = _recorded_tags(home) if tags is None else tags
    alive = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for entry in environ:
            if entry.startswith(f"{TAG_ENV}=".encode()) and (not tags or entry.split(b"=", 1)[1].decode() in tags):
                alive.append(int(proc.name))
    return alive


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("e2e")
    runtime = _start(home, "--instance-count", "2", "--epochs", "2")
    try:
        yield runtime
    finally:
        if runtime.proc.poll() is None:
            runtime.proc.send_signal(signal.SIGTERM)
            runtime.proc.wait(timeout=90)


def _stack_outputs(served: Served) -> dict[str, str]:
    stacks = served.aws("cloudformation", "describe-stacks", "--stack-name", "dogbreed-dev")["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0]["Outputs"]}


def _source_uri(served: Served, outputs: dict[str, str]) -> str:
    """The sourcedir tarball the earlier tests uploaded under code/ (content-addressed by ops)."""
    listed = served.aws("s3api", "list-objects-v2", "--bucket", outputs["ArtifactBucketName"], "--prefix", "code/")
    return f"s3://{outputs['ArtifactBucketName']}/{listed['Contents'][0]['Key']}"


def test_up_trains_on_two_hosts_shows_progress_and_serves(served: Served) -> None:
    text = served.output()
    # Phases, not internal state names; one line per epoch with train and valid side by side.
    assert "[3/7] train" in text and "[5/7] deploy" in text and "InService" in text, text[-3000:]
    assert "→ CreateTrainingJob" not in text and "CheckSections" not in text, text[-3000:]
    assert re.search(r"epoch 2/\d+\s+train loss \S+ top1 \S+ \| valid loss", text), text[-3000:]
    assert "training report: " in text and "confusion_matrix.png" in text, text[-3000:]
    jobs = served.aws("sagemaker", "list-training-jobs")["TrainingJobSummaries"]
    assert len(jobs) == 1 and jobs[0]["TrainingJobStatus"] == "Completed"
    job = served.aws("sagemaker", "describe-training-job", "--training-job-name", jobs[0]["TrainingJobName"])
    assert job["ResourceConfig"]["InstanceCount"] == 2
    photo = dataset.sample_photo(served.home / "china.jpg")
    done = served.ops("predict", str(photo))
    assert done.returncode == 0, done.stderr
    labels = re.findall(r"^\s+\d\. (\S+)", done.stdout, flags=re.M)
    assert len(labels) == 5 and set(labels) <= CLASSES, done.stdout
    assert jobs[0]["TrainingJobName"] in done.stdout  # the model version the endpoint answers with


def test_the_console_up_prints_shows_the_demo_execution_path(served: Served) -> None:
    """The console URL `up` prints answers with the demo execution's path as Step Functions' own history has it."""
    match = re.search(r"^console: (http://127\.0\.0\.1:\d+)/", served.output(), flags=re.M)
    assert match, served.output()[-3000:]
    with urllib.request.urlopen(f"{match.group(1)}/api/pipeline", timeout=30) as response:
        pipeline = json.loads(response.read())
    (demo,) = pipeline["executions"]
    assert demo["status"] == "SUCCEEDED"
    query = urllib.parse.urlencode({"arn": demo["executionArn"]})
    with urllib.request.urlopen(f"{match.group(1)}/api/execution?{query}", timeout=30) as response:
        shown = json.loads(response.read())
    events = served.aws("stepfunctions", "get-execution-history", "--execution-arn", demo["executionArn"])["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    assert shown["entered"] == entered and entered[-1] == "Deployed"


def test_awscli_uploads_a_dataset_and_starts_the_pipeline_while_predictions_keep_succeeding(
    served: Served, tmp_path: Path
) -> None:
    outputs = _stack_outputs(served)
    # The whole digits set and 6 epochs (~0.97 test top-1): the champion gate must see a better model than the
    # 2-epoch one `up` deployed, or it rightly deploys nothing.
    data = dataset.render_digits(tmp_path / "digits", size=16)
    prefix = f"s3://{outputs['DataBucketName']}/datasets/e2e-awscli/"
    served.aws("s3", "cp", "--recursive", "--only-show-errors", str(data), prefix)
    listed = len(
        served.aws(
            "s3api", "list-objects-v2", "--bucket", outputs["DataBucketName"], "--prefix", "datasets/e2e-awscli/train/"
        ).get("Contents", [])
    )
    train_images = sum(1 for _ in (data / "train").rglob("*.jpg"))
    assert listed == train_images
    package = served.ops("package-source", "--out", str(tmp_path))
    assert package.returncode == 0, package.stderr
    source = Path(package.stdout.strip())
    source_uri = f"s3://{outputs['ArtifactBucketName']}/code/{source.name}"
    served.aws("s3", "cp", "--only-show-errors", str(source), source_uri)
    execution_input = {
        "TrainingData": prefix,
        "SourceDir": source_uri,
        "Hyperparameters": {
            "arch": "smallcnn",
            "epochs": "6",
            "batch-size": "32",
            "learning-rate": "0.1",
            "image-size": "16",
            "augment": "crop",
            "pretrained": "none",
            "num-workers": "0",
        },
        "Training": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
        "Gate": {"MinTestAccuracy": 0.0},
        "Polling": {"IntervalSeconds": 1, "MaxAttempts": 600},
    }
    (tmp_path / "input.json").write_text(json.dumps(execution_input))

    statuses: list[int] = []
    stop = threading.Event()
    photo = str(dataset.sample_photo(tmp_path / "flower.jpg", name="flower.jpg"))

    def keep_predicting() -> None:
        while not stop.is_set():
            done = served.ops("predict", photo, timeout=60)
            statuses.append(done.returncode)

    sender = threading.Thread(target=keep_predicting)
    sender.start()
    try:
        # No --name: Step Functions gives the execution a UUID name.
        started = served.aws(
            "stepfunctions",
            "start-execution",
            "--state-machine-arn",
            outputs["StateMachineArn"],
            "--input",
            f"file://{tmp_path / 'input.json'}",
        )
        arn = started["executionArn"]
        assert re.fullmatch(r".*:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", arn), arn
        deadline = time.monotonic() + 600
        while (final := served.aws("stepfunctions", "describe-execution", "--execution-arn", arn))[
            "status"
        ] == "RUNNING":
            assert time.monotonic() < deadline, "execution still RUNNING after 600 s"
            time.sleep(2)
    finally:
        stop.set()
        sender.join()
    assert final["status"] == "SUCCEEDED", final
    assert statuses and all(code == 0 for code in statuses), statuses  # blue/green: no failed prediction
    output = json.loads(final["output"])
    job = served.aws("sagemaker", "describe-training-job", "--training-job-name", output["TrainingJobName"])
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == prefix
    # The job trained on exactly the images the awscli uploaded (train.py reports the split's sample count).
    events = served.aws(
        "logs",
        "filter-log-events",
        "--log-group-name",
        "/aws/sagemaker/TrainingJobs",
        "--log-stream-name-prefix",
        f"{output['TrainingJobName']}/",
    )["events"]
    samples = {int(m) for e in events for m in re.findall(r"METRIC split=train .*?samples=(\d+)", e["message"])}
    assert samples == {train_images}, samples
    history = served.aws("stepfunctions", "get-execution-history", "--execution-arn", arn, "--max-items", "5")
    assert len(history["events"]) == 5 and history.get("NextToken")


def test_ops_start_of_a_failing_training_ends_failed_with_its_reason(served: Served, tmp_path: Path) -> None:
    outputs = _stack_outputs(served)
    bad = {
        "TrainingData": f"s3://{outputs['DataBucketName']}/datasets/e2e-awscli/",
        "SourceDir": _source_uri(served, outputs),
        "Hyperparameters": {"arch": "vgg99", "epochs": "1"},
        "Gate": {"MinTestAccuracy": 0.0},
        "Polling": {"IntervalSeconds": 1, "MaxAttempts": 300},
    }
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    done = served.ops("start", "--input", str(tmp_path / "bad.json"), "--watch", "--poll-seconds", "1")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "status: FAILED" in done.stdout and "TrainingFailed" in done.stderr and "vgg99" in done.stderr


def test_kill_9_leaves_no_orphans_and_the_next_up_serves_at_once(served: Served, tmp_path: Path) -> None:
    outputs = _stack_outputs(served)
    jobs_before = len(served.aws("sagemaker", "list-training-jobs")["TrainingJobSummaries"])
    long_run = {
        "TrainingData": f"s3://{outputs['DataBucketName']}/datasets/e2e-awscli/",
        "SourceDir": _source_uri(served, outputs),
        "Hyperparameters": {
            "arch": "smallcnn",
            "epochs": "50",
            "image-size": "16",
            "pretrained": "none",
            "num-workers": "0",
            "augment": "crop",
        },
        "Gate": {"MinTestAccuracy": 0.0},
        "Polling": {"IntervalSeconds": 1, "MaxAttempts": 600},
    }
    (tmp_path / "long.json").write_text(json.dumps(long_run))
    arn = served.aws(
        "stepfunctions",
        "start-execution",
        "--state-machine-arn",
        outputs["StateMachineArn"],
        "--name",
        "e2e-interrupted",
        "--input",
        f"file://{tmp_path / 'long.json'}",
    )["executionArn"]
    deadline = time.monotonic() + 300
    while True:  # wait until the training hosts run
        jobs = served.aws("sagemaker", "list-training-jobs", "--status-equals", "InProgress")["TrainingJobSummaries"]
        if (
            jobs
            and served.aws("sagemaker", "describe-training-job", "--training-job-name", jobs[0]["TrainingJobName"])[
                "SecondaryStatus"
            ]
            == "Training"
        ):
            break
        assert time.monotonic() < deadline, "the long job never reached Training"
        time.sleep(1)
    assert _children_alive(served.home), "expected training hosts and endpoint instances to be running"
    # The runtime copies a live execution to its records once a second (local_aws/stepfunctions/executions.py);
    # only a recorded one can be closed as ABORTED after the kill. CI of 2026-12-02 killed a run whose job reached
    # Training within that second, and the execution was gone (an execution that young is lost with moto's memory).
    store = ExecutionStore(served.home / "executions")
    deadline = time.monotonic() + 10
    while store.get(arn) is None:
        assert time.monotonic() < deadline, "the running execution was never recorded"
        time.sleep(0.2)

    served.proc.send_signal(signal.SIGKILL)
    served.proc.wait(timeout=30)
    deadline = time.monotonic() + 5
    while _children_alive(served.home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _children_alive(served.home) == [], "processes outlived a SIGKILL of the runtime"

    started = time.monotonic()
    again = _start(served.home, timeout=300)
    try:
        assert "again (restored, no retraining)" in again.output(), again.output()[-2000:]
        assert time.monotonic() - started < 120
        photo = dataset.sample_photo(tmp_path / "china.jpg")
        done = again.ops("predict", str(photo))
        assert done.returncode == 0, done.stderr
        described = again.aws("stepfunctions", "describe-execution", "--execution-arn", arn)
        assert described["status"] == "ABORTED" and described["error"] == "LocalRuntime.Stopped", described
        jobs = again.aws("sagemaker", "list-training-jobs")["TrainingJobSummaries"]
        assert len(jobs) == jobs_before + 1  # the interrupted job, and nothing retrained
        assert {j["TrainingJobStatus"] for j in jobs} == {"Completed", "Failed"}
    finally:
        # The children of this runtime, by their tags: `down` empties processes.json, and with no record the check
        # would count any tagged process on the machine (CI2 of 2026-12-02 counted another session's 6 instances).
        started_here = _recorded_tags(served.home)
        down = again.ops("down", timeout=120)
        assert down.returncode == 0, (down.stderr, again.output()[-6000:])
        again.proc.wait(timeout=30)
    assert started_here, "the restarted runtime had no children on record"
    # `down` returns once the runtime's stop has killed and reaped what it started (processes.py); a member of a
    # SIGKILLed group may still be on its way out for a moment, as after the SIGKILL above.
    deadline = time.monotonic() + 5
    while _children_alive(served.home, started_here) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _children_alive(served.home, started_here) == []
