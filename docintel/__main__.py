from docintel.cli import app

app(prog_name="docintel")
