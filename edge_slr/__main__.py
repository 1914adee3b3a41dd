from edge_slr.cli.main import main

raise SystemExit(main())
