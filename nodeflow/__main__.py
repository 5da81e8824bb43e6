from nodeflow.cli.command import main

raise SystemExit(main())
