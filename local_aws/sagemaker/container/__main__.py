"""``python -m local_aws.sagemaker.container``: one endpoint instance."""

from __future__ import annotations

import sys

from local_aws.sagemaker.container.server import main

sys.exit(main())
