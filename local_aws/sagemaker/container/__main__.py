"""``python -m local_aws.sagemaker.container``: one endpoint instance."""

from __future__ import annotations

import sys

# NOTE: guarded, because the spawn start method of the model workers imports the parent's main module again.
if __name__ == "__main__":
    from local_aws.sagemaker.container.server import main

    sys.exit(main())
