//! Fills one side of a layout with the fields given on the command line and writes it as a PNG at
//! 300 dpi: `cargo run -p tessera-print --example render_layout -- side.svg out.png
//! user.display_name="Zoë Ångström" user.employee_id=E-10042`. `scripts/barcode-check.sh` uses it
//! to hand the barcodes of a card to another decoder.

use std::collections::BTreeMap;
use std::process::ExitCode;
use tessera_core::ports::CardData;
use tessera_print::SvgRenderer;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [svg, out, fields @ ..] = args.as_slice() else {
        eprintln!("usage: render_layout SIDE.svg OUT.png [FIELD=VALUE ...]");
        return ExitCode::from(2);
    };
    let mut map = BTreeMap::new();
    for field in fields {
        let Some((key, value)) = field.split_once('=') else {
            eprintln!("{field:?} is not FIELD=VALUE");
            return ExitCode::from(2);
        };
        map.insert(key.to_owned(), value.to_owned());
    }
    let layout = match std::fs::read_to_string(svg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{svg}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let data = CardData {
        fields: map,
        photo: None,
    };
    match SvgRenderer::new().render_png(&layout, &data) {
        Ok(png) => match std::fs::write(out, png) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{out}: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("{svg}: {e}");
            ExitCode::FAILURE
        }
    }
}
