pub mod machines;
