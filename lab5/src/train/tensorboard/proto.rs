//! The protobuf messages of TensorBoard's event files that lab5 writes, declared for
//! `prost` (which encodes them) with the field numbers and types of TensorBoard's own
//! `.proto` files (TensorBoard 2.21):
//!
//! - `tensorboard/compat/proto/event.proto`: `Event`;
//! - `tensorboard/compat/proto/summary.proto`: `Summary`, `Summary.Value`,
//!   `Summary.Image`, `SummaryMetadata`, `SummaryMetadata.PluginData`;
//! - `tensorboard/compat/proto/histogram.proto`: `HistogramProto`;
//! - `tensorboard/plugins/hparams/plugin_data.proto`: `HParamsPluginData`,
//!   `SessionStartInfo`, `SessionEndInfo`;
//! - `google/protobuf/struct.proto`: `Value` (the hyper-parameter values).
//!
//! Only the fields lab5 sets are declared; a reader skips none it needs (protobuf
//! readers ignore absent fields). The numbers were read from the descriptors of the
//! `_pb2` modules of the setup's TensorBoard; the test `tests/tensorboard.rs` reads what
//! these messages encode with TensorBoard itself.

use std::collections::BTreeMap;

/// `tensorboard.Event`: one record of an event file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// Global step (lab5: the epoch, from 1; 0 before training).
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the event carries.
    #[prost(oneof = "event::What", tags = "3, 5")]
    pub what: Option<event::What>,
}

/// The `what` one-of of [`Event`].
pub mod event {
    /// What an event carries.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum What {
        /// `file_version` (first event of a file: `brain.Event:2`).
        #[prost(string, tag = "3")]
        FileVersion(String),
        /// `summary`: tagged values.
        #[prost(message, tag = "5")]
        Summary(super::Summary),
    }
}

/// `tensorboard.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The tagged values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorboard.Summary.Value`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    /// Tag, e.g. `loss/train`.
    #[prost(string, tag = "1")]
    pub tag: String,
    /// Which plugin owns the value (hparams); absent for the classic kinds.
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    /// The value itself.
    #[prost(oneof = "summary_value::Value", tags = "2, 4, 5")]
    pub value: Option<summary_value::Value>,
}

/// The `value` one-of of [`SummaryValue`].
pub mod summary_value {
    /// A scalar, an image or a histogram.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// `simple_value`: a scalar.
        #[prost(float, tag = "2")]
        SimpleValue(f32),
        /// `image`: an encoded image.
        #[prost(message, tag = "4")]
        Image(super::Image),
        /// `histo`: a histogram.
        #[prost(message, tag = "5")]
        Histo(super::HistogramProto),
    }
}

/// `tensorboard.Summary.Image`: an encoded image (lab5: PNG, RGB).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    /// Height in pixels.
    #[prost(int32, tag = "1")]
    pub height: i32,
    /// Width in pixels.
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    /// The image file's bytes (PNG).
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// `tensorboard.HistogramProto`: bucket `i` holds the values in
/// `[bucket_limit[i - 1], bucket_limit[i])`, the first from `min`, the last closed at
/// `max` (as TensorFlow's `Histogram::Add` and `torch.histc` fill them; TensorBoard's
/// `data_compat` draws the first bucket from `min` and the last up to `max`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramProto {
    /// Smallest value.
    #[prost(double, tag = "1")]
    pub min: f64,
    /// Largest value.
    #[prost(double, tag = "2")]
    pub max: f64,
    /// Number of values.
    #[prost(double, tag = "3")]
    pub num: f64,
    /// Sum of the values.
    #[prost(double, tag = "4")]
    pub sum: f64,
    /// Sum of their squares.
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    /// Right edge of each bucket.
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    /// Count of each bucket.
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

/// `tensorboard.SummaryMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    /// The plugin that reads the value.
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

/// `tensorboard.SummaryMetadata.PluginData`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    /// e.g. `hparams`.
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    /// The plugin's own serialised message.
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// `tensorboard.hparams.HParamsPluginData`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamsPluginData {
    /// `PLUGIN_DATA_VERSION` of `tensorboard/plugins/hparams/metadata.py` (0).
    #[prost(int32, tag = "1")]
    pub version: i32,
    /// Start or end of a session.
    #[prost(oneof = "hparams_plugin_data::Data", tags = "3, 4")]
    pub data: Option<hparams_plugin_data::Data>,
}

/// The `data` one-of of [`HParamsPluginData`].
pub mod hparams_plugin_data {
    /// A session's start (its hyper-parameters) or end (its status).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Data {
        /// `session_start_info`.
        #[prost(message, tag = "3")]
        SessionStartInfo(super::SessionStartInfo),
        /// `session_end_info`.
        #[prost(message, tag = "4")]
        SessionEndInfo(super::SessionEndInfo),
    }
}

/// `tensorboard.hparams.SessionStartInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionStartInfo {
    /// Hyper-parameter name -> value.
    #[prost(btree_map = "string, message", tag = "1")]
    pub hparams: BTreeMap<String, HParamValue>,
    /// Sessions of one group are repeats of one configuration (lab5: the run name).
    #[prost(string, tag = "4")]
    pub group_name: String,
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// `tensorboard.hparams.SessionEndInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionEndInfo {
    /// `tensorboard.hparams.Status`: 1 `STATUS_SUCCESS`.
    #[prost(int32, tag = "1")]
    pub status: i32,
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "2")]
    pub end_time_secs: f64,
}

/// `google.protobuf.Value`, restricted to the kinds a hyper-parameter takes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamValue {
    /// The value.
    #[prost(oneof = "h_param_value::Kind", tags = "2, 3, 4")]
    pub kind: Option<h_param_value::Kind>,
}

/// The `kind` one-of of [`HParamValue`].
pub mod h_param_value {
    /// A number, a string or a flag.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        /// `number_value`.
        #[prost(double, tag = "2")]
        NumberValue(f64),
        /// `string_value`.
        #[prost(string, tag = "3")]
        StringValue(String),
        /// `bool_value`.
        #[prost(bool, tag = "4")]
        BoolValue(bool),
    }
}

/// `tensorboard.hparams.Status.STATUS_SUCCESS`.
pub const STATUS_SUCCESS: i32 = 1;
