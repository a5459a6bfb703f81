"""Entry point of ``python -m engine`` (BLAS threads as ``engine.checks.blas_threads``)."""

import sys

from threadpoolctl import threadpool_limits

from engine.checks import blas_threads
from engine.cli import main

threadpool_limits(limits=blas_threads())
sys.exit(main())
