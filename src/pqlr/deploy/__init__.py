"""pqlr.deploy: from an integer Graph to files for a microcontroller.

plan (arena planner) -> tiles (weight tiles under a RAM budget) -> binfmt (the .bin model file) ->
codegen (model.c/.h, model_data.c/.h, tiles.c/.h from templates/) -> package (the output folder),
host (compile and run a package on the host), frontend (the C audio frontend)."""
