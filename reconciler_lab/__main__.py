from reconciler_lab.cli import main

raise SystemExit(main())
