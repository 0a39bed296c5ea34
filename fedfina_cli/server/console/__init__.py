"""The console (SPEC "The console"): web pages for the operations team and loan officers, served by `fedfina serve`."""
