"""How a training host starts its code: the toolkit's entry-point rules or an explicit ContainerEntrypoint.

The command each host runs (``python train.py ...``, torchrun, a shell script, or the SDK v3 ModelTrainer's
``ContainerEntrypoint``) and, for the container form, the ``python``/``pip`` the "image" provides.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from local_aws.sagemaker.training import toolkit
from local_aws.sagemaker.training.requirements import JobPython


@dataclass(frozen=True)
class Entry:
    """How a host starts its code: the toolkit's entry-point rules, or an explicit ContainerEntrypoint."""

    program: str | None
    container: list[str] | None = None

    @property
    def is_python(self) -> bool:
        return self.program is not None and self.program.endswith(".py")

    def command(
        self,
        python: str,
        user_args: list[str],
        torchrun: bool,
        hosts: int,
        procs: int,
        index: int,
        port: int,
        base: Path,
    ) -> list[str]:
        if self.container is not None:
            # Each host's /opt/ml is its own base dir, also inside a "bash -c" string: the SDK v3 ModelTrainer sends
            # ["-c", "chmod +x /opt/ml/input/data/sm_drivers/sm_train.sh && /opt/ml/..."] (sagemaker-train 1.27.0
            # sagemaker/train/constants.py DEFAULT_CONTAINER_ARGUMENTS, model_trainer.py:819), which ``relocate``
            # (whole-value paths only) left pointing at the real /opt/ml.
            return [toolkit.relocate_text(arg, base) for arg in self.container]
        assert self.program is not None
        if self.program.endswith(".sh"):
            return ["/bin/sh", "-c", " ".join([f"./{self.program}", *user_args])]
        if torchrun:
            return [
                python,
                "-m",
                "torch.distributed.run",
                "--nnodes",
                str(hosts),
                "--nproc_per_node",
                str(procs),
                "--node_rank",
                str(index),
                "--master_addr",
                "127.0.0.1",
                "--master_port",
                str(port),
                self.program,
                *user_args,
            ]
        return [python, self.program, *user_args]


def model_trainer_requirements(layout: toolkit.HostLayout) -> Path:
    """The requirements file the SDK v3 ModelTrainer's ``sm_train.sh`` will pip-install, if it names one.

    ``SourceCode(requirements=...)`` makes sm_train.sh run ``$SM_PYTHON_CMD .../install_requirements.py <file>`` from
    the code channel (sagemaker-train 1.27.0 sagemaker/train/templates.py INSTALL_REQUIREMENTS, model_trainer.py:1356);
    the name is also in ``sm_drivers/sourcecode.json``. A path that names nothing returns a missing file.
    """
    try:
        source = json.loads((layout.data / "sm_drivers" / "sourcecode.json").read_text())
    except (OSError, ValueError):
        source = {}
    name = source.get("requirements") if isinstance(source, dict) else None
    return layout.data / "code" / str(name) if name else layout.data / "code" / ".no-requirements"


def container_python(job_dir: Path, python: JobPython) -> Path:
    """A bin dir whose ``python``/``python3``/``pip``/``pip3`` are the job's interpreter (the "image's" Python).

    The ModelTrainer's sm_train.sh picks ``$(command -v python3 || command -v python)`` and fails without
    ``pip3``/``pip`` on PATH (sagemaker-train 1.27.0 sagemaker/train/templates.py ``check_python``). Locally the image
    is the runtime's environment, as for the toolkit form (which runs ``sys.executable`` or the requirements layer
    directly); a bare PATH lookup could find another interpreter without the runtime's packages, and its pip would
    install into the wrong environment. With requirements, ``python`` is their layer, so install_requirements.py
    finds them installed and never touches the runtime's own site-packages.
    """
    shims = job_dir / ".bin"
    shims.mkdir(parents=True, exist_ok=True)
    # NOTE: exec wrappers, not symlinks: a venv's interpreter finds its pyvenv.cfg next to the path it was started
    # by, so a symlink elsewhere would start the base interpreter without the venv's packages.
    commands = {"python": "", "python3": "", "pip": " -m pip", "pip3": " -m pip"}
    for name, module in commands.items():
        script = shims / name
        script.write_text(f'#!/bin/sh\nexec {shlex.quote(python.executable)}{module} "$@"\n')
        script.chmod(0o755)
    return shims
