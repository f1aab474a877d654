import sys

from gradcam.cli import main

sys.exit(main())
