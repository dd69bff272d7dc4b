"""Tables, plots and the HTML report, built from schedules and the experiment store."""
