"""One module per command, one shape for each: a settings dataclass (`GenerateRun`, ...) -> a
pipeline function (`run_generate(run)`, ...) that checks the settings, does the work, writes the
files and returns the typed record that went to disk (common.records). `blocks/cli.py` only turns
flags into the settings, calls the pipeline and prints the record; `shared` holds what several
commands load alike. Nothing below this package imports it.

    command            module                settings        pipeline               record (common/records/)
    generate           generate              GenerateRun     run_generate           PatchRecord per target (+ GenerateSummary)
    evaluate           evaluate              EvaluateRun     run_evaluate           EvaluateReport (printed, or written to out)
    print              print_sheet           PrintRun        run_print              SheetInfo (sheet.json)
    calibration-sheet  calibration_sheet     CalibrationRun  run_calibration_sheet  CalibrationInfo (calib.json)
    calibrate          calibrate             CalibrateRun    run_calibrate          ColorMapRecord (colormap.json)
    capture            capture               CaptureRun      run_capture            CaptureSummary
    simulate           simulate              SimulateRun     run_simulate           SimulateInfo (only the video is written)
    onepixel           onepixel              OnePixelRun     run_onepixel           OnePixelSummary (summary.json)
    sweep              sweep                 SweepRun        run_sweep              SweepRecord (sweep.json)
    sample-scenes,     scenes                ScenesRun       run_scenes             ScenesInfo (scenes.json)
    digits-scenes

Progress is the caller's: a pipeline that runs long takes `progress(label, total)`, a context
manager yielding an update(record) function (the CLI draws rich bars with it; the default,
shared.no_progress, draws nothing). Errors are UserError lines that name the setting
(`steps must be at least 1`).
"""
